import type * as PromClient from 'prom-client'
import { AcmeError, ErrorCodes } from '../errors.js'
import {
  certificateGauges, DEFAULT_LOCK_WAIT_BUCKETS, DEFAULT_ORDER_DURATION_BUCKETS, METRICS, recordManagerEvents, type MetricsSource,
} from './definitions.js'

/** The part of a prom-client Registry used here (any prom-client >= 14). */
export interface PromClientRegistry {
  registerMetric (metric: never): void
  removeSingleMetric (name: string): void
}

export interface PromClientOptions {
  /**
   * The prom-client module to build the metrics with. Default: `import('prom-client')`, resolved
   * from @fastify-acme/core (an optional peer dependency). Pass it when your bundler or
   * package layout gives this package another copy, or none.
   */
  promClient?: unknown
  /** upper bounds of the `acme_lock_wait_seconds` buckets, in seconds (default 0.005 to 60) */
  lockWaitBuckets?: readonly number[]
  /** upper bounds of the `acme_order_duration_seconds` buckets, in seconds (default 0.1 to 300) */
  orderDurationBuckets?: readonly number[]
}

type Prom = typeof PromClient

/**
 * Registers the fastify-acme metrics (the same names as managerMetrics()) on a prom-client
 * Registry: gauges are collected from `manager.list()` at each scrape; counters and histograms
 * count the manager's events from now on. prom-client is imported only here, lazily.
 * Resolves with a function that unregisters them. Throws ERR_ACME_INVALID_OPTION when
 * prom-client cannot be loaded, and prom-client's own error when a name is taken.
 */
export async function registerPromClient (manager: MetricsSource, registry: PromClientRegistry, opts: PromClientOptions = {}): Promise<() => void> {
  const prom = await loadPromClient(opts.promClient)
  const gauge = (def: typeof METRICS[keyof typeof METRICS], pick: keyof ReturnType<typeof certificateGauges>) => new prom.Gauge({
    name: def.name,
    help: def.help,
    labelNames: def.labels,
    registers: [],
    collect (this: PromClient.Gauge) {
      this.reset()
      for (const sample of certificateGauges(manager.list())[pick]) this.set(sample.labels ?? {}, sample.value)
    },
  })
  const orders = new prom.Counter({ name: METRICS.orders.name, help: METRICS.orders.help, labelNames: METRICS.orders.labels, registers: [] })
  orders.inc({ result: 'success' }, 0)
  orders.inc({ result: 'failure' }, 0)
  const renewalFailures = new prom.Counter({ name: METRICS.renewalFailures.name, help: METRICS.renewalFailures.help, registers: [] })
  const attempts = new prom.Counter({ name: METRICS.orderAttempts.name, help: METRICS.orderAttempts.help, labelNames: METRICS.orderAttempts.labels, registers: [] })
  const lockWait = new prom.Histogram({ name: METRICS.lockWait.name, help: METRICS.lockWait.help, buckets: [...(opts.lockWaitBuckets ?? DEFAULT_LOCK_WAIT_BUCKETS)], registers: [] })
  const orderDuration = new prom.Histogram({
    name: METRICS.orderDuration.name, help: METRICS.orderDuration.help, buckets: [...(opts.orderDurationBuckets ?? DEFAULT_ORDER_DURATION_BUCKETS)], registers: [],
  })
  const metrics = [
    gauge(METRICS.certificates, 'certificates'),
    gauge(METRICS.issued, 'issued'),
    gauge(METRICS.expiry, 'expiry'),
    gauge(METRICS.nextRenewal, 'nextRenewal'),
    gauge(METRICS.lastFailure, 'lastFailure'),
    orders, renewalFailures, attempts, lockWait, orderDuration,
  ]
  // register all or none: a name already taken fails before anything is added
  const registered: string[] = []
  try {
    for (const metric of metrics) {
      registry.registerMetric(metric as never)
      registered.push((metric as unknown as { name: string }).name)
    }
  } catch (err) {
    for (const name of registered) registry.removeSingleMetric(name)
    throw err
  }
  const stop = recordManagerEvents(manager, {
    orderSucceeded: (s) => { orders.inc({ result: 'success' }); orderDuration.observe(s) },
    orderFailed: (renewal) => { orders.inc({ result: 'failure' }); if (renewal) renewalFailures.inc() },
    orderPlaced: (issuer) => attempts.inc({ issuer }),
    lockAcquired: (s) => lockWait.observe(s),
  })
  return () => {
    stop()
    for (const name of registered) registry.removeSingleMetric(name)
  }
}

async function loadPromClient (given: unknown): Promise<Prom> {
  if (given !== undefined) {
    const mod = given as Partial<Prom>
    if (typeof mod?.Gauge !== 'function' || typeof mod.Counter !== 'function' || typeof mod.Histogram !== 'function') {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, 'option "promClient" must be the prom-client module (with Gauge, Counter and Histogram)')
    }
    return mod as Prom
  }
  try {
    const mod = await import('prom-client') as Prom & { default?: Prom }
    return typeof mod.Gauge === 'function' ? mod : mod.default!
  } catch (cause) {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, 'registerPromClient() needs prom-client: install it (npm install prom-client) or pass it as the promClient option', { cause })
  }
}
