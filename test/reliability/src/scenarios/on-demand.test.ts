import { describe, expect, it } from 'vitest'
import { testEnv } from '../lib/test-env.js'
import { runOnDemand } from './on-demand.js'

describe('on-demand TLS under a flood of denied names', () => {
  it('2 x 100 handshakes with random denied SNI names reach neither storage nor the CA, and memory stays flat', async () => {
    const result = await runOnDemand(testEnv(), { handshakes: 100 })
    expect(result).toMatchObject({ completed: 0, deniedOrders: 0, caRequestsDuringFlood: 0, allowedServed: true, crashed: [] })
    expect(result.heapUsedAfterSecondMb - result.heapUsedBeforeMb).toBeLessThan(10)
  })
})
