import { describe, expect, it } from 'vitest'
import type { Storage } from '../storage/contract.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

describe('an order asked for while storage is down', () => {
  it('fails with ERR_ACME_STORAGE and plans its next attempt soon (not "gave up", not the next 10-minute check)', async () => {
    const inner = memoryStorage()
    const storage: Storage = { ...inner, put: async () => { throw new Error('connection refused') } }
    const manager = createCertificateManager({ directoryUrl: 'https://ca.invalid/dir', termsOfServiceAgreed: true, storage })
    try {
      const failed = new Promise<{ nextAttemptAt: Date | null }>((resolve) => manager.once('failed', resolve))
      const started = Date.now()
      await expect(manager.manage(['down.example.test'])).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
      const { nextAttemptAt } = await failed
      expect(nextAttemptAt).toBeInstanceOf(Date)
      expect(nextAttemptAt!.getTime()).toBeGreaterThan(started)
      expect(nextAttemptAt!.getTime()).toBeLessThanOrEqual(started + 60_000)
      expect(manager.list()[0]!.nextAttemptAt).toEqual(nextAttemptAt)

      // until then, handshakes for the name cost one storage read each: no check, no lock, no order
      let calls = 0
      for (const method of ['put', 'lock', 'tryLock', 'delete'] as const) {
        const original = storage[method] as (...args: unknown[]) => unknown
        ;(storage as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => { calls++; return original(...args) }
      }
      expect(await manager.loadSecureContext('down.example.test')).toBeUndefined()
      expect(await manager.loadSecureContext('down.example.test')).toBeUndefined()
      expect(calls).toBe(0)
    } finally {
      await manager.close()
    }
  })
})

describe('close() while start() waits for the storage watch', () => {
  it('leaves nothing running: the watch is stopped and the scheduler never starts', async () => {
    const inner = memoryStorage()
    let stopped = 0
    let reads = 0
    const storage: Storage = {
      ...inner,
      stat: async (key) => { reads++; return inner.stat(key) },
      watch: async () => { await new Promise((resolve) => setTimeout(resolve, 200)); return async () => { stopped++ } },
    }
    const manager = createCertificateManager({ directoryUrl: 'local', storage, renewal: { checkIntervalMs: 100, syncIntervalMs: 100 } })
    manager.add([['idle.example.test']])
    const starting = manager.start()
    await manager.close()
    await starting
    reads = 0
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(stopped).toBe(1)
    expect(reads).toBe(0)
  })
})

describe('an on-demand name whose first order fails', () => {
  it('is dropped, freeing its place under maxCertificates, and its handshakes touch nothing until its next attempt time', async () => {
    const inner = memoryStorage()
    let puts = 0
    const storage: Storage = { ...inner, put: async () => { puts++; throw new Error('connection refused') } }
    let asked = 0
    const manager = createCertificateManager({
      directoryUrl: 'https://ca.invalid/dir',
      termsOfServiceAgreed: true,
      storage,
      onDemand: { allow: () => { asked++; return true }, maxCertificates: 1 },
    })
    try {
      expect(await manager.loadSecureContext('first.example.test')).toBeUndefined()
      expect(puts).toBe(1) // the storage check
      expect(manager.list()).toEqual([])
      expect(await manager.loadSecureContext('first.example.test')).toBeUndefined()
      expect(puts).toBe(1)
      // the place it held is free: another name is admitted (and fails the same way)
      expect(await manager.loadSecureContext('second.example.test')).toBeUndefined()
      expect(puts).toBe(2)
      expect(asked).toBe(2)
    } finally {
      await manager.close()
    }
  })
})
