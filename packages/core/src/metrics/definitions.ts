import type { CertificateInfo, CertificateManager } from '../manager/manager.js'
import type { ManagerEvents } from '../manager/events.js'
import type { MetricSample } from './exposition.js'

/** What metrics need from a manager: its certificates and its events. */
export type MetricsSource = Pick<CertificateManager, 'list' | 'on' | 'off'>

/** Every metric fastify-acme exports: name, type, help and label names. */
export const METRICS = {
  certificates: {
    name: 'acme_certificates',
    type: 'gauge',
    help: 'Managed certificates by status: valid, expired, or missing (none obtained yet).',
    labels: ['status'],
  },
  issued: {
    name: 'acme_certificate_issued_timestamp_seconds',
    type: 'gauge',
    help: 'Start of validity (notBefore) of the certificate served for each primary name, as a Unix time in seconds.',
    labels: ['name'],
  },
  expiry: {
    name: 'acme_certificate_expiry_timestamp_seconds',
    type: 'gauge',
    help: 'End of validity (notAfter) of the certificate served for each primary name, as a Unix time in seconds.',
    labels: ['name'],
  },
  nextRenewal: {
    name: 'acme_certificate_next_renewal_timestamp_seconds',
    type: 'gauge',
    help: "When each certificate is due for renewal, as a Unix time in seconds; reason is ari (the CA's window), ratio (share of lifetime left) or emergency.",
    labels: ['name', 'reason'],
  },
  lastFailure: {
    name: 'acme_certificate_last_failure_timestamp_seconds',
    type: 'gauge',
    help: 'Time of the last failed order of each certificate whose orders are failing now, with its error code; absent once an order succeeds.',
    labels: ['name', 'code'],
  },
  orders: {
    name: 'acme_orders_total',
    type: 'counter',
    help: 'Certificate orders finished, by result: success (obtained or renewed) or failure.',
    labels: ['result'],
  },
  renewalFailures: {
    name: 'acme_renewal_failures_total',
    type: 'counter',
    help: 'Failed renewal attempts (a certificate was being served and its renewal failed).',
    labels: [],
  },
  orderAttempts: {
    name: 'acme_order_attempts_total',
    type: 'counter',
    help: 'Orders placed at a CA, by issuer key (more than one per certificate when an issuer fails and the next is tried).',
    labels: ['issuer'],
  },
  lockWait: {
    name: 'acme_lock_wait_seconds',
    type: 'histogram',
    help: 'Time spent waiting for the cluster-wide issuance lock before an order, in seconds.',
    labels: [],
  },
  orderDuration: {
    name: 'acme_order_duration_seconds',
    type: 'histogram',
    help: 'Duration of successful orders, from the first CA request to the stored certificate, in seconds.',
    labels: [],
  },
} as const

/** Upper bounds of the `acme_lock_wait_seconds` buckets, in seconds. */
export const DEFAULT_LOCK_WAIT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
/** Upper bounds of the `acme_order_duration_seconds` buckets, in seconds. */
export const DEFAULT_ORDER_DURATION_BUCKETS: readonly number[] = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300])

/** The gauge samples of a list of certificates (CertificateManager.list()). */
export function certificateGauges (certificates: CertificateInfo[]): Record<'certificates' | 'issued' | 'expiry' | 'nextRenewal' | 'lastFailure', MetricSample[]> {
  const byStatus: Record<CertificateInfo['status'], number> = { valid: 0, expired: 0, missing: 0 }
  const out = { issued: [] as MetricSample[], expiry: [] as MetricSample[], nextRenewal: [] as MetricSample[], lastFailure: [] as MetricSample[] }
  for (const cert of certificates) {
    byStatus[cert.status]++
    const name = cert.names[0]!
    if (cert.notBefore) out.issued.push({ labels: { name }, value: seconds(cert.notBefore) })
    if (cert.notAfter) out.expiry.push({ labels: { name }, value: seconds(cert.notAfter) })
    if (cert.renewal) out.nextRenewal.push({ labels: { name, reason: cert.renewal.reason }, value: seconds(cert.renewal.at) })
    if (cert.lastError) out.lastFailure.push({ labels: { name, code: cert.lastError.code }, value: seconds(cert.lastError.at) })
  }
  return { certificates: Object.entries(byStatus).map(([status, value]) => ({ labels: { status }, value })), ...out }
}

/** What the event-fed metrics record; every duration in seconds. */
export interface MetricsRecorder {
  orderSucceeded (durationSeconds: number): void
  orderFailed (renewal: boolean): void
  orderPlaced (issuer: string): void
  lockAcquired (waitSeconds: number): void
}

/** Feeds a manager's events to `recorder`; returns the function that stops it. */
export function recordManagerEvents (source: MetricsSource, recorder: MetricsRecorder): () => void {
  const listeners: { [E in keyof ManagerEvents]?: (event: ManagerEvents[E]) => void } = {
    obtained: (event) => recorder.orderSucceeded(event.durationMs / 1000),
    renewed: (event) => recorder.orderSucceeded(event.durationMs / 1000),
    failed: (event) => recorder.orderFailed(event.renewal),
    obtaining: (event) => recorder.orderPlaced(event.issuer),
    locked: (event) => recorder.lockAcquired(event.waitMs / 1000),
  }
  const entries = Object.entries(listeners) as Array<[keyof ManagerEvents, never]>
  for (const [event, listener] of entries) source.on(event, listener)
  return () => { for (const [event, listener] of entries) source.off(event, listener) }
}

function seconds (date: Date): number {
  return date.getTime() / 1000
}
