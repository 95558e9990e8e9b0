import { describe, expect, it } from 'vitest'
import type { CertificateBundle } from '../certificate.js'
import { silentLogger } from '../logger.js'
import { resolveRenewalOptions } from '../renewal/index.js'
import type { Managed } from './manager.js'
import { Scheduler } from './scheduler.js'

const DAY = 86400_000

describe('the maintenance loop', () => {
  it('does not wake every second for a retry time that passed on a certificate not due (a failed forced renewal)', async () => {
    const bundle = { notBefore: new Date(Date.now() - DAY).toISOString(), notAfter: new Date(Date.now() + 89 * DAY).toISOString() } as CertificateBundle
    const m = { names: ['a.test'], primary: 'a.test', onDemand: false, bundle, nextAttemptAt: new Date(Date.now() - 1000) } as Managed
    let syncs = 0
    const scheduler = new Scheduler({
      renewal: { ...resolveRenewalOptions({}), syncIntervalMs: 60_000, concurrency: 1, stagingFallback: true },
      managed: () => [m],
      logger: silentLogger,
      renew: async () => {},
      sync: async () => { syncs++ },
      due: () => false,
      refreshAri: async () => {},
    })
    scheduler.start()
    try {
      await new Promise((resolve) => setTimeout(resolve, 3500))
      expect(syncs).toBe(1) // the first check only; the next is the regular one, minutes away
    } finally {
      scheduler.stop()
    }
  })

  it('wakes by a retry time set outside the loop (a handshake\'s failed order), not only at the next regular check', async () => {
    const m = { names: ['b.test'], primary: 'b.test', onDemand: false } as Managed
    let retryAt = Infinity
    let renewals = 0
    const scheduler = new Scheduler({
      renewal: { ...resolveRenewalOptions({}), syncIntervalMs: 60_000, concurrency: 1, stagingFallback: true },
      managed: () => [m],
      logger: silentLogger,
      renew: async () => { renewals++ },
      sync: async () => {},
      due: () => Date.now() >= retryAt,
      refreshAri: async () => {},
    })
    m.inflight = new Promise(() => {}) // the first check finds it busy (an order in flight elsewhere)
    scheduler.start()
    try {
      await new Promise((resolve) => setTimeout(resolve, 100))
      // that order failed: retry in 1.2 s (the regular check is 10 minutes away)
      m.inflight = undefined
      retryAt = Date.now() + 1200
      m.nextAttemptAt = new Date(retryAt)
      scheduler.wakeBy(retryAt)
      await new Promise((resolve) => setTimeout(resolve, 1600))
      expect(renewals).toBe(1)
    } finally {
      scheduler.stop()
    }
  })
})
