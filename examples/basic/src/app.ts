import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps, type FastifyAcmeOptions } from 'fastify-acme'

export interface AppOptions {
  /** the names of the one certificate this app serves */
  domains: string[]
  /** where certificates and the account live */
  dataDir: string
  /** everything else fastify-acme takes: directoryUrl, email, caBundle, challenges, ... */
  acme?: Omit<FastifyAcmeOptions, 'domains' | 'storage'>
  logger?: boolean
}

/** The whole app: one route, HTTPS from fastify-acme, certificates on the local disk. */
export async function buildApp (opts: AppOptions) {
  const app = Fastify({ https: acmeHttps(), logger: opts.logger ?? false })
  app.get('/', async (request) => ({ hello: request.hostname }))
  await app.register(fastifyAcme, {
    ...opts.acme,
    domains: opts.domains,
    storage: fsStorage({ dir: opts.dataDir }),
  })
  return app
}
