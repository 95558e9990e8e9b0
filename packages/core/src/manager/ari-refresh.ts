import type { Issuer } from '../certificate.js'
import { isAcmeError } from '../errors.js'
import type { Logger } from '../logger.js'
import { pickAriTime } from '../renewal/index.js'
import type { Storage } from '../storage/contract.js'
import { LockNames } from '../storage/keys.js'
import type { BundleStore } from './bundle-store.js'
import type { Managed } from './manager.js'

export interface AriContext {
  storage: Storage
  store: BundleStore
  issuers: Issuer[]
  logger: Logger
  /** the lease of the issuance lock (lockTtlMs) */
  lockTtlMs: number
  /** the fewest ms between two checks of one certificate (RFC 9773 §4.3: one minute; less when checkIntervalMs is) */
  minIntervalMs: number
}

const HOUR = 3600_000
/** The most a CA's Retry-After may defer the next check (RFC 9773 §4.3: one day). */
const MAX_INTERVAL_MS = 24 * HOUR
/** After an error that will not go away by itself (a 4xx, a malformed answer), or no answer (RFC 9773 §4.3.3). */
const LONG_TERM_RETRY_MS = 6 * HOUR
/** Temporary errors back off from minIntervalMs, doubling, up to this. */
const MAX_TEMPORARY_RETRY_MS = HOUR

/** When the certificate's ARI window is next asked for: the CA's Retry-After, or a failed check's backoff. */
export function ariCheckAt (m: Managed): number {
  const retry = m.ariRetry?.serial === m.bundle?.serial ? m.ariRetry?.at ?? 0 : 0
  return Math.max(m.bundle?.ari ? Date.parse(m.bundle.ari.nextCheck) : 0, retry)
}

/**
 * Asks the CA for the certificate's ARI window (RFC 9773) once its last answer's Retry-After
 * has passed, picks a random time inside the window (kept while the window stays the same),
 * and stores it in the bundle so every instance renews at that time.
 * Runs under tryLock of the issuance lock: if an instance is renewing, this is skipped.
 * A failed check is retried later (in memory, per certificate): a temporary error from a
 * minute on, doubling up to an hour; any other error, or no answer, after six hours.
 */
export async function refreshAri (ctx: AriContext, m: Managed, now = new Date()): Promise<void> {
  const bundle = m.bundle
  if (!bundle?.certId || ariCheckAt(m) > now.getTime()) return
  const issuer = ctx.issuers.find((i) => i.key === bundle.issuer.key)
  if (!issuer?.renewalInfo) return
  const failures = m.ariRetry?.serial === bundle.serial ? m.ariRetry.failures : 0
  const retryIn = (ms: number, failed = false) => {
    m.ariRetry = { serial: bundle.serial, at: now.getTime() + ms, failures: failed ? failures + 1 : failures }
  }
  try {
    const info = await issuer.renewalInfo(bundle)
    if (!info) return retryIn(LONG_TERM_RETRY_MS)
    const lock = await ctx.storage.tryLock(LockNames.issue(m.primary), { ttlMs: ctx.lockTtlMs })
    // an instance is renewing it or storing its window: look again later (a sync may bring either first)
    if (!lock) return retryIn(ctx.minIntervalMs)
    try {
      const current = await ctx.store.read(m.primary)
      if (!current || current.serial !== bundle.serial) return
      const window = { start: info.window.start.toISOString(), end: info.window.end.toISOString() }
      // Retry-After 0 would mean a query at every wake, 30 days would miss a mass revocation
      const nextCheck = Math.min(now.getTime() + MAX_INTERVAL_MS, Math.max(now.getTime() + ctx.minIntervalMs, info.retryAfter.getTime()))
      const previous = current.ari
      const sameWindow = previous?.window.start === window.start && previous.window.end === window.end
      const selectedTime = sameWindow ? previous.selectedTime : pickAriTime(info.window, now).toISOString()
      const updated = {
        ...current,
        ari: { window, ...(info.explanationURL ? { explanationURL: info.explanationURL } : {}), selectedTime, nextCheck: new Date(nextCheck).toISOString() },
      }
      await ctx.store.write(updated)
      if (m.bundle?.serial === current.serial) m.bundle = { ...m.bundle, ari: updated.ari } // keep the copy shared with the TLS cache
      m.ariRetry = undefined
      if (!sameWindow) ctx.logger.info({ names: m.names, window, selectedTime }, 'ARI renewal window set')
    } finally {
      await lock.release()
    }
  } catch (err) {
    const temporary = isAcmeError(err) && err.retryable === true
    const backoff = temporary ? Math.min(MAX_TEMPORARY_RETRY_MS, ctx.minIntervalMs * 2 ** failures) : LONG_TERM_RETRY_MS
    const retryAfter = isAcmeError(err) && err.retryAfter ? err.retryAfter.getTime() - now.getTime() : 0
    retryIn(Math.min(MAX_INTERVAL_MS, Math.max(backoff, retryAfter)), true)
    throw err
  }
}
