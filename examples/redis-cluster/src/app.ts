import { redisStorage } from '@fastify-acme/storage-adapters/redis'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps, type FastifyAcmeOptions } from 'fastify-acme'

export interface AppOptions {
  /** redis[s]://[user:password@]host[:port][/db] of the Redis every instance shares */
  redisUrl: string
  /** key prefix in Redis: instances with the same namespace form one cluster (default 'fastify-acme') */
  namespace?: string
  /** everything else fastify-acme takes; unset options come from the ACME_* variables */
  acme?: Omit<FastifyAcmeOptions, 'storage'>
  logger?: boolean
}

/**
 * One instance of a cluster. Run as many as you like, on one machine or many: they share the
 * Redis storage and need nothing else to coordinate. One of them orders each certificate
 * (under a lock in Redis), any of them answers the CA's HTTP-01 request (the token is in
 * Redis before the CA is told to look), and all of them serve the certificate.
 */
export async function buildApp (opts: AppOptions) {
  // the storage opens its own Redis client from the URL
  const storage = redisStorage({ url: opts.redisUrl, ...(opts.namespace ? { namespace: opts.namespace } : {}) })
  const app = Fastify({ https: acmeHttps(), logger: opts.logger ?? false })
  app.get('/', async (request) => ({ hello: request.hostname, pid: process.pid }))
  // a storage handed to the plugin is yours to close; onClose hooks run in reverse order, so this
  // one, added before the plugin, runs after the plugin has stopped its work and released its locks
  app.addHook('onClose', () => storage.close())
  await app.register(fastifyAcme, { ...opts.acme, storage })
  // one log line per certificate event, so a log pipeline sees which instance did what
  for (const event of ['obtaining', 'obtained', 'renewed', 'updated', 'failed'] as const) {
    app.acme.on(event, (e) => app.log.info({ event, names: e.names, ...('serial' in e ? { serial: e.serial } : {}) }, `certificate ${event}`))
  }
  return app
}
