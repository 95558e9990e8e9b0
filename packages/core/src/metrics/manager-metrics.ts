import type { CertificateInfo } from '../manager/manager.js'
import {
  certificateGauges, DEFAULT_LOCK_WAIT_BUCKETS, DEFAULT_ORDER_DURATION_BUCKETS, METRICS, recordManagerEvents, type MetricsSource,
} from './definitions.js'
import { CumulativeHistogram, type MetricFamily, type MetricSample, renderExposition } from './exposition.js'

export interface ManagerMetricsOptions {
  /** upper bounds of the `acme_lock_wait_seconds` buckets, in seconds (default 0.005 to 60) */
  lockWaitBuckets?: readonly number[]
  /** upper bounds of the `acme_order_duration_seconds` buckets, in seconds (default 0.1 to 300) */
  orderDurationBuckets?: readonly number[]
}

/** Counter totals since the metrics started listening. */
export interface MetricsCounters {
  orders: { success: number, failure: number }
  renewalFailures: number
  /** orders placed at each CA, by issuer key */
  orderAttempts: Record<string, number>
}

/**
 * Prometheus metrics of one CertificateManager, with no dependency: gauges read from list()
 * when rendered, counters and histograms fed by its events from the moment this object
 * exists. Get it with managerMetrics(manager), which returns one shared instance per manager.
 */
export class ManagerMetrics {
  readonly lockWait: CumulativeHistogram
  readonly orderDuration: CumulativeHistogram
  readonly #source: MetricsSource
  readonly #counters: MetricsCounters = { orders: { success: 0, failure: 0 }, renewalFailures: 0, orderAttempts: {} }
  readonly #stop: () => void

  constructor (source: MetricsSource, opts: ManagerMetricsOptions = {}) {
    this.#source = source
    this.lockWait = new CumulativeHistogram(opts.lockWaitBuckets ?? DEFAULT_LOCK_WAIT_BUCKETS)
    this.orderDuration = new CumulativeHistogram(opts.orderDurationBuckets ?? DEFAULT_ORDER_DURATION_BUCKETS)
    const c = this.#counters
    this.#stop = recordManagerEvents(source, {
      orderSucceeded: (s) => { c.orders.success++; this.orderDuration.observe(s) },
      orderFailed: (renewal) => { c.orders.failure++; if (renewal) c.renewalFailures++ },
      orderPlaced: (issuer) => { c.orderAttempts[issuer] = (c.orderAttempts[issuer] ?? 0) + 1 },
      lockAcquired: (s) => this.lockWait.observe(s),
    })
  }

  /** A copy of the counter totals. */
  counters (): MetricsCounters {
    const c = this.#counters
    return { orders: { ...c.orders }, renewalFailures: c.renewalFailures, orderAttempts: { ...c.orderAttempts } }
  }

  /** Every metric family, gauges computed from `certificates` (default: the manager's list() now). */
  families (certificates: CertificateInfo[] = this.#source.list()): MetricFamily[] {
    const c = this.#counters
    const gauges = certificateGauges(certificates)
    return [
      family(METRICS.certificates, gauges.certificates),
      family(METRICS.issued, gauges.issued),
      family(METRICS.expiry, gauges.expiry),
      family(METRICS.nextRenewal, gauges.nextRenewal),
      family(METRICS.lastFailure, gauges.lastFailure),
      family(METRICS.orders, [
        { labels: { result: 'success' }, value: c.orders.success },
        { labels: { result: 'failure' }, value: c.orders.failure },
      ]),
      family(METRICS.renewalFailures, [{ value: c.renewalFailures }]),
      family(METRICS.orderAttempts, Object.entries(c.orderAttempts).map(([issuer, value]) => ({ labels: { issuer }, value }))),
      family(METRICS.lockWait, this.lockWait.samples()),
      family(METRICS.orderDuration, this.orderDuration.samples()),
    ]
  }

  /** The Prometheus text exposition, format 0.0.4: serve it with PROMETHEUS_CONTENT_TYPE. */
  text (): string {
    return renderExposition(this.families())
  }

  /** Stops listening to the manager's events; the counters stop counting. */
  close (): void {
    this.#stop()
    if (instances.get(this.#source) === this) instances.delete(this.#source)
  }
}

const instances = new WeakMap<MetricsSource, ManagerMetrics>()

/**
 * The metrics of `manager`, created (and listening to its events) on the first call; later
 * calls return the same object, so every caller sees the same counters. Call it right after
 * creating the manager to count from the start (the Fastify plugin does, at registration).
 */
export function managerMetrics (manager: MetricsSource, opts?: ManagerMetricsOptions): ManagerMetrics {
  let metrics = instances.get(manager)
  if (!metrics) {
    metrics = new ManagerMetrics(manager, opts)
    instances.set(manager, metrics)
  }
  return metrics
}

function family (def: { name: string, help: string, type: MetricFamily['type'] }, samples: MetricSample[]): MetricFamily {
  return { name: def.name, help: def.help, type: def.type, samples }
}
