import { invalidOption, managerMetrics, PROMETHEUS_CONTENT_TYPE, type CertificateManager } from '@fastify-acme/core'
import type { FastifyInstance, RouteShorthandOptions } from 'fastify'

/** `app.acme`: the CertificateManager, plus `metrics()`. */
export type FastifyAcmeManager = CertificateManager & {
  /**
   * The Prometheus text exposition (format 0.0.4) of this manager's certificates and events
   * since the plugin was registered. Same as `managerMetrics(app.acme).text()` from core.
   */
  metrics (): string
}

/** The opt-in Prometheus route. */
export interface MetricsRouteOptions {
  /** URL path of the route (default '/metrics') */
  path?: string
  /**
   * Hook(s) run before the route, e.g. a bearer-token or source-address check. Default none:
   * the metrics (names, expiry times, error codes; never a key) are public.
   */
  onRequest?: RouteShorthandOptions['onRequest']
}

interface ResolvedMetricsRoute {
  path: string
  onRequest?: RouteShorthandOptions['onRequest']
}

/** Validates the plugin's `metrics` option: true for the default route, an object to configure it. */
export function resolveMetricsRoute (option: boolean | MetricsRouteOptions | undefined): ResolvedMetricsRoute | undefined {
  if (option === undefined || option === false) return undefined
  const opts = option === true ? {} : option
  if (typeof opts !== 'object' || opts === null) invalidOption('metrics', option, 'true or { path?, onRequest? }')
  const path = opts.path ?? '/metrics'
  if (typeof path !== 'string' || !path.startsWith('/')) invalidOption('metrics.path', path, "a URL path starting with '/'")
  checkHooks('metrics.onRequest', opts.onRequest)
  return { path, ...(opts.onRequest ? { onRequest: opts.onRequest } : {}) }
}

/**
 * Starts counting (core's managerMetrics, one per manager) and adds `metrics()` to the
 * manager object, which stays the same CertificateManager instance.
 */
export function withMetrics (manager: CertificateManager): FastifyAcmeManager {
  const metrics = managerMetrics(manager)
  Object.defineProperty(manager, 'metrics', { value: () => metrics.text(), enumerable: false, configurable: true })
  return manager as FastifyAcmeManager
}

export function registerMetricsRoute (fastify: FastifyInstance, manager: CertificateManager, route: ResolvedMetricsRoute): void {
  const metrics = managerMetrics(manager)
  fastify.route({
    method: 'GET',
    url: route.path,
    ...(route.onRequest ? { onRequest: route.onRequest } : {}),
    handler: async (_request, reply) => reply.header('cache-control', 'no-store').type(PROMETHEUS_CONTENT_TYPE).send(metrics.text()),
  })
}

/** Throws ERR_ACME_INVALID_OPTION unless `hooks` is undefined, a function or a non-empty array of functions. */
export function checkHooks (option: string, hooks: unknown): void {
  if (hooks === undefined) return
  const list = Array.isArray(hooks) ? hooks : [hooks]
  if (list.length === 0 || list.some((h) => typeof h !== 'function')) invalidOption(option, hooks, 'a hook function (request, reply) or an array of them')
}
