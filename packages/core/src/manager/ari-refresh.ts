import type { Issuer } from '../certificate.js'
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
}

/**
 * Asks the CA for the certificate's ARI window (RFC 9773) once its last answer's Retry-After
 * has passed, picks a random time inside the window (kept while the window stays the same),
 * and stores it in the bundle so every instance renews at that time.
 * Runs under tryLock of the issuance lock: if an instance is renewing, this is skipped.
 */
export async function refreshAri (ctx: AriContext, m: Managed, now = new Date()): Promise<void> {
  const bundle = m.bundle
  if (!bundle?.certId || (bundle.ari && Date.parse(bundle.ari.nextCheck) > now.getTime())) return
  const issuer = ctx.issuers.find((i) => i.key === bundle.issuer.key)
  if (!issuer?.renewalInfo) return
  const info = await issuer.renewalInfo(bundle)
  if (!info) return
  const lock = await ctx.storage.tryLock(LockNames.issue(m.primary), { ttlMs: ctx.lockTtlMs })
  if (!lock) return
  try {
    const current = await ctx.store.read(m.primary)
    if (!current || current.serial !== bundle.serial) return
    const window = { start: info.window.start.toISOString(), end: info.window.end.toISOString() }
    const previous = current.ari
    const sameWindow = previous?.window.start === window.start && previous.window.end === window.end
    const selectedTime = sameWindow ? previous.selectedTime : pickAriTime(info.window, now).toISOString()
    const updated = {
      ...current,
      ari: { window, ...(info.explanationURL ? { explanationURL: info.explanationURL } : {}), selectedTime, nextCheck: info.retryAfter.toISOString() },
    }
    await ctx.store.write(updated)
    m.bundle = updated
    if (!sameWindow) ctx.logger.info({ names: m.names, window, selectedTime }, 'ARI renewal window set')
  } finally {
    await lock.release()
  }
}
