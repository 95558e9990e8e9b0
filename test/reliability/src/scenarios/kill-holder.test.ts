import { describe, expect, it } from 'vitest'
import { testEnv } from '../lib/test-env.js'
import { runKillHolder } from './kill-holder.js'

describe('SIGKILL of the lock holder mid-order', () => {
  it('another instance takes over after the lease and completes the certificate (Redis, 2 s lease)', async () => {
    const result = await runKillHolder(testEnv(), { storage: 'redis', processes: 2, ttlMs: 2000, delayMs: 3000 })
    expect(result).toMatchObject({ servedBySurvivors: 1, crashed: [] })
    expect(result.lockTakenAfterMs).toBeGreaterThanOrEqual(2000 * 2 / 3 - 50)
    expect(result.recoveredMs).toBeLessThanOrEqual(2000 + 2000)
    expect(result.orders).toBe(2)
  })
})
