import { describe, expect, it } from 'vitest'
import { testEnv } from '../lib/test-env.js'
import { runCaFaults } from './ca-faults.js'

describe('CA faults: 50 % bad nonces, 429 + Retry-After, 503s, dropped connections', () => {
  it('issues every certificate and never comes back inside a Retry-After', async () => {
    const result = await runCaFaults(testEnv(), { names: 3, timeoutMs: 45_000, faultsPerRule: 3 })
    expect(result).toMatchObject({ unissued: 0, retryAfterViolations: 0, crashed: [] })
    expect(result.badNonces).toBeGreaterThan(0)
    expect(result.injected.rateLimited).toBeGreaterThan(0)
    expect(result.requestsPerCertificate).toBeLessThan(80)
  })
})
