import { describe, expect, it } from 'vitest'
import { testEnv } from '../lib/test-env.js'
import { runRedisOutage } from './redis-outage.js'

describe('Redis outage under handshake load', () => {
  it('serves cached names through 3 s without Redis, orders nothing meanwhile, and issues again after', async () => {
    const result = await runRedisOutage(testEnv(), { processes: 2, names: 3, outageMs: 3000 })
    expect(result).toMatchObject({ failedHandshakes: 0, ordersDuringOutage: 0, outageObtainCode: 'ERR_ACME_STORAGE', crashed: [] })
    expect(result.handshakesDuringOutage).toBeGreaterThan(20)
    expect(result.resumedAfterMs).not.toBeNull()
  })
})
