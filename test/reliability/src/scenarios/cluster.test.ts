import { describe, expect, it } from 'vitest'
import { testEnv } from '../lib/test-env.js'
import { runCluster } from './cluster.js'

describe('cluster: 2 processes x 5 names on one storage', () => {
  for (const storage of ['redis', 's3', 'fs'] as const) {
    it(`${storage}: one order per name, every process serves every name`, async () => {
      const result = await runCluster(testEnv(), { storage, processes: 2, names: 5, timeoutMs: 40_000 })
      expect(result).toMatchObject({ orders: 5, accounts: 1, serving: 10, inconsistentNames: 0, crashed: [], failed: [], unserved: [] })
    })
  }
})
