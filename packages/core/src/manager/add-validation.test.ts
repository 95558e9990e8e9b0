import { describe, expect, it } from 'vitest'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

describe('manager.add()', () => {
  it('refuses a bare string with a coded error instead of a TypeError', async () => {
    const manager = createCertificateManager({ storage: memoryStorage() })
    try {
      expect(() => manager.add('example.test' as unknown as string[])).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION' }))
      expect(() => manager.add(undefined as unknown as string[])).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION' }))
    } finally {
      await manager.close()
    }
  })
})

describe('renewal timer options', () => {
  it('refuse intervals Node timers cannot count (past 2^31-1 ms they fire at once, in a loop)', () => {
    for (const renewal of [{ checkIntervalMs: 30 * 86400_000 }, { syncIntervalMs: 30 * 86400_000 }]) {
      expect(() => createCertificateManager({ storage: memoryStorage(), renewal })).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining('2592000000') }))
    }
  })
})
