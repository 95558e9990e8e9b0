import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'

export interface AppOptions {
  /** names to serve, e.g. ['app.localhost', 'api.localhost'] */
  domains: string[]
  /** where the local CA (root and intermediate) and the certificates live */
  dataDir: string
  logger?: boolean
}

/**
 * A development app: HTTPS from the embedded local CA (`directoryUrl: 'local'`, like Caddy's
 * `tls internal`). No CA, no network, no port 80: the root is created once in `dataDir`, and
 * the certificates it signs are renewed and swapped like ACME ones.
 */
export async function buildApp (opts: AppOptions) {
  const app = Fastify({ https: acmeHttps(), logger: opts.logger ?? false })
  app.get('/', async (request) => ({ hello: request.hostname, secure: request.protocol === 'https' }))
  await app.register(fastifyAcme, {
    domains: opts.domains,
    directoryUrl: 'local',
    storage: fsStorage({ dir: opts.dataDir }),
    challenges: { http01: false }, // the local CA needs no challenge: no route, no port-80 listener
    env: false,
  })
  return app
}
