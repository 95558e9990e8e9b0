import { describe, expect, it } from 'vitest'
import { testEnv } from '../lib/test-env.js'
import { runBadInputs } from './bad-inputs.js'

describe('bad-input table', () => {
  it('every case gets its coded error or documented status: no crash, nothing lost, no key echoed', async () => {
    const result = await runBadInputs(testEnv())
    expect(result.cases).toBeGreaterThanOrEqual(30)
    expect(result.results.filter((r) => !r.pass).map((r) => ({ case: `${r.group}: ${r.name}`, expected: r.expected, got: r.outcome }))).toEqual([])
    expect({ crashes: result.crashes, uncoded: result.uncodedErrors }).toEqual({ crashes: 0, uncoded: 0 })
  })
})
