import { describe, expect, it } from 'vitest'
import type { Issuer, RenewalInfo } from '../certificate.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { silentLogger } from '../logger.js'
import { LockNames } from '../storage/keys.js'
import { memoryStorage } from '../storage/memory.js'
import { ariCheckAt, refreshAri } from './ari-refresh.js'
import { BundleStore } from './bundle-store.js'
import { createCertificateManager, type Managed } from './manager.js'

const MIN = 60_000
const HOUR = 3600_000

/** A stored local-CA certificate, and refreshAri's context with an issuer whose renewalInfo() is `answer`. */
async function setup (answer: () => Promise<RenewalInfo | null>) {
  const storage = memoryStorage()
  const manager = createCertificateManager({ directoryUrl: 'local', storage })
  await manager.manage([['ari.example.test']])
  await manager.close()
  const store = new BundleStore(storage)
  const bundle = (await store.read('ari.example.test'))!
  expect(bundle.certId).toBeTruthy()
  const issuer = { key: bundle.issuer.key, renewalInfo: answer } as unknown as Issuer
  const m: Managed = { names: bundle.names, primary: bundle.names[0]!, bundle, onDemand: false }
  return { storage, m, ctx: { storage, store, issuers: [issuer], logger: silentLogger, lockTtlMs: 30_000, minIntervalMs: MIN } }
}

describe('ARI checks (RFC 9773 §4.3): how soon the next one comes', () => {
  const window = { start: new Date(Date.now() + 10 * 24 * HOUR), end: new Date(Date.now() + 11 * 24 * HOUR) }

  it('clamps the CA\'s Retry-After to between the minimum interval and one day', async () => {
    let retryAfter = new Date()
    const { m, ctx } = await setup(async () => ({ window, retryAfter }))
    const now = new Date()
    await refreshAri(ctx, m, now)
    expect(ariCheckAt(m)).toBe(now.getTime() + MIN) // Retry-After 0 would query at every wake
    retryAfter = new Date(now.getTime() + 30 * 24 * HOUR)
    const later = new Date(now.getTime() + MIN)
    await refreshAri(ctx, m, later)
    expect(ariCheckAt(m)).toBe(later.getTime() + 24 * HOUR)
  })

  it('backs off after temporary errors (doubling from the minimum) and waits 6 h after others or no answer', async () => {
    let fail: Error | null = new AcmeError(ErrorCodes.CA_PROBLEM, 'GET renewalInfo failed: 503', { retryable: true })
    const { m, ctx } = await setup(async () => { if (fail) throw fail; return null })
    let now = Date.now()
    const attempt = async () => { await refreshAri(ctx, m, new Date(now)).catch(() => {}); const at = ariCheckAt(m) - now; now = ariCheckAt(m); return at }
    expect([await attempt(), await attempt(), await attempt()]).toEqual([MIN, 2 * MIN, 4 * MIN])
    // nothing is asked before the backoff ends
    let asked = 0
    ctx.issuers[0]!.renewalInfo = async () => { asked++; return null }
    await refreshAri(ctx, m, new Date(now - 1))
    expect(asked).toBe(0)
    fail = new AcmeError(ErrorCodes.CA_BAD_RESPONSE, 'renewalInfo has no valid suggestedWindow')
    ctx.issuers[0]!.renewalInfo = async () => { throw fail }
    expect(await attempt()).toBe(6 * HOUR)
    ctx.issuers[0]!.renewalInfo = async () => null
    expect(await attempt()).toBe(6 * HOUR)
  })

  it('looks again after the minimum interval when another instance holds the lock, and a success clears the backoff', async () => {
    const { storage, m, ctx } = await setup(async () => ({ window, retryAfter: new Date(Date.now() + 6 * HOUR) }))
    const now = Date.now()
    const held = await storage.tryLock(LockNames.issue(m.primary))
    expect(held).not.toBeNull()
    await refreshAri(ctx, m, new Date(now))
    expect(ariCheckAt(m)).toBe(now + MIN)
    expect(m.bundle!.ari).toBeUndefined()
    await held!.release()
    await refreshAri(ctx, m, new Date(now + MIN))
    expect(m.ariRetry).toBeUndefined()
    expect(m.bundle!.ari?.window.start).toBe(window.start.toISOString())
    expect(ariCheckAt(m)).toBeGreaterThan(now + 5 * HOUR)
  })
})
