import { s3Storage, type S3StorageOptions } from '@fastify-acme/storage-adapters/s3'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps, type FastifyAcmeOptions } from 'fastify-acme'

export interface AppOptions {
  /** the names of the one certificate this app serves (default: ACME_DOMAINS) */
  domains?: string[]
  /** the bucket (it must exist), a prefix, and how to reach it: see S3StorageOptions */
  s3: S3StorageOptions
  /** everything else fastify-acme takes: directoryUrl, email, caBundle, challenges, ... */
  acme?: Omit<FastifyAcmeOptions, 'domains' | 'storage'>
  logger?: boolean
}

/**
 * An app whose certificates, account, challenge tokens and locks live in S3. Every instance
 * given the same bucket and prefix joins one cluster; the bucket is the only shared piece.
 */
export async function buildApp (opts: AppOptions) {
  const storage = s3Storage(opts.s3)
  await storage.probe() // fail at startup if the server ignores conditional writes (locks need them)
  const app = Fastify({ https: acmeHttps(), logger: opts.logger ?? false })
  app.get('/', async (request) => ({ hello: request.hostname }))
  // a storage handed to the plugin is yours to close; onClose hooks run in reverse order, so this
  // one, added before the plugin, runs after the plugin has stopped its work and released its locks
  app.addHook('onClose', () => storage.close())
  await app.register(fastifyAcme, { ...opts.acme, ...(opts.domains ? { domains: opts.domains } : {}), storage })
  return app
}
