import fp from 'fastify-plugin'
import { fastifyAcmePlugin, type FastifyAcmeOptions } from './plugin.js'

/**
 * Automatic HTTPS for Fastify. Register it once; it obtains, serves and renews certificates.
 *
 * ```ts
 * const app = Fastify({ https: acmeHttps() })
 * await app.register(fastifyAcme, { domains: ['example.com'], email, termsOfServiceAgreed: true, directoryUrl: 'letsencrypt' })
 * await app.listen({ port: 443, host: '::' })
 * ```
 */
const fastifyAcme = fp(fastifyAcmePlugin, { fastify: '5.x', name: 'fastify-acme' })

export default fastifyAcme
export { fastifyAcme }
export { acmeHttps } from './https.js'
export type { AcmeHttpsOptions, AcmeHttpsServerOptions } from './https.js'
export type { FastifyAcmeOptions }
export type { AcmeEnv } from './env.js'
export type { FastifyAcmeManager, MetricsRouteOptions } from './metrics-route.js'
export type { StatusPageOptions } from './status-route.js'
export { AcmeError, ErrorCodes, isAcmeError } from '@fastify-acme/core'
export type { CertificateInfo, CertificateManager, ManagerEvents, Storage } from '@fastify-acme/core'
