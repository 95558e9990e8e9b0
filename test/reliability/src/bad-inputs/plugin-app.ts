import { memoryStorage, type Storage } from '@fastify-acme/core'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyAcme, { acmeHttps, type FastifyAcmeOptions } from 'fastify-acme'

/**
 * Registers the plugin on a fresh app that logs at debug level to `logFile`. Resolves with the
 * app once ready; the caller closes it. `ready` runs the onReady hooks (the port-80 listener).
 */
export async function pluginApp (logFile: string, options: Record<string, unknown>, opts: { https?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ ...(opts.https === false ? {} : { https: acmeHttps() }), logger: { level: 'debug', file: logFile } })
  try {
    await app.register(fastifyAcme, {
      env: false,
      storage: memoryStorage() as Storage,
      challenges: { http01: { port: false } },
      ...options,
    } as FastifyAcmeOptions)
    await app.ready()
    return app
  } catch (err) {
    await app.close().catch(() => {})
    throw err
  }
}
