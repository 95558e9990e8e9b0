import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps, type FastifyAcmeOptions } from 'fastify-acme'

export interface AppOptions {
  /**
   * The names that may get a certificate. In a real app this is a lookup: the customer
   * domains in your database, checked at the first handshake for each name.
   */
  allowed: (name: string) => boolean | Promise<boolean>
  /** where certificates and the account live */
  dataDir: string
  /** everything else fastify-acme takes: directoryUrl, email, caBundle, challenges, ... */
  acme?: Omit<FastifyAcmeOptions, 'domains' | 'storage' | 'onDemand'>
  logger?: boolean
}

/**
 * An app that serves customer domains it does not know in advance: no `domains`, and an
 * on-demand allow() that decides at the first TLS handshake for each name.
 */
export async function buildApp (opts: AppOptions) {
  const app = Fastify({ https: acmeHttps(), logger: opts.logger ?? false })
  app.get('/', async (request) => ({ hello: request.hostname }))
  await app.register(fastifyAcme, {
    ...opts.acme,
    storage: fsStorage({ dir: opts.dataDir }),
    onDemand: {
      allow: opts.allowed,
      handshakeTimeoutMs: 20_000, // a first handshake waits at most this long for its certificate
      decisionCacheMs: 60_000,    // allow() is asked at most once a minute per name
      maxCertificates: 1000,      // a hard cap on what on-demand may ever order
    },
  })
  return app
}
