import { describe, expect, it } from 'vitest'
import type { Storage } from '../storage/contract.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

/** Memory storage whose lock() fails while `broken` is set: every order fails, reads work. */
function breakableStorage () {
  const inner = memoryStorage()
  const state = { broken: false }
  const storage: Storage = { ...inner, lock: (name, opts) => state.broken ? Promise.reject(new Error('lock service down')) : inner.lock(name, opts) }
  return { storage, state }
}

describe('certificates whose names change, or that expired, while orders fail', () => {
  it('keeps serving the names a certificate had when a name is added and the new order fails, in the running process and after a restart', async () => {
    const { storage, state } = breakableStorage()
    const first = createCertificateManager({ directoryUrl: 'local', storage })
    await first.manage([['a.example.test', 'b.example.test']])
    state.broken = true
    first.add([['a.example.test', 'b.example.test', 'c.example.test']])
    expect(first.secureContext('a.example.test')).toBeDefined() // not dropped while the new list is ordered
    expect(await first.loadSecureContext('c.example.test')).toBeUndefined() // its order fails
    expect(first.secureContext('b.example.test')).toBeDefined()
    await first.close()

    const restarted = createCertificateManager({ directoryUrl: 'local', storage })
    await expect(restarted.manage([['a.example.test', 'b.example.test', 'c.example.test']])).rejects.toThrow('lock service down')
    expect(restarted.secureContext('a.example.test')).toBeDefined()
    expect(restarted.list()[0]).toMatchObject({ names: ['a.example.test', 'b.example.test', 'c.example.test'], status: 'valid' })
    await restarted.close()
  })

  it('keeps serving when a list is reordered so that its first name changes, in the running process and after a restart', async () => {
    const { storage, state } = breakableStorage()
    const first = createCertificateManager({ directoryUrl: 'local', storage })
    await first.manage([['a.example.test', 'c.example.test']])
    state.broken = true
    first.add([['c.example.test', 'a.example.test']])
    expect(first.secureContext('a.example.test')).toBeDefined()
    expect(first.secureContext('c.example.test')).toBeDefined()
    await expect(first.renew('c.example.test')).rejects.toThrow('lock service down')
    expect(first.secureContext('c.example.test')).toBeDefined()
    await first.close()

    const restarted = createCertificateManager({ directoryUrl: 'local', storage })
    await expect(restarted.manage([['c.example.test', 'a.example.test']])).rejects.toThrow('lock service down')
    expect(restarted.secureContext('a.example.test')).toBeDefined()
    expect(restarted.secureContext('c.example.test')).toBeDefined()
    expect(restarted.list()[0]).toMatchObject({ names: ['c.example.test', 'a.example.test'], status: 'valid' })

    state.broken = false
    await restarted.renew('c.example.test')
    expect(restarted.certificateFor('a.example.test')!.names).toEqual(['c.example.test', 'a.example.test'])
    await restarted.close()
  })

  /** A certificate for `stored` that expired, then a restart managing `names` while every order fails. */
  async function restartAfterExpiry (stored: string[], names: string[]) {
    const { storage, state } = breakableStorage()
    const first = createCertificateManager({ directoryUrl: 'local', storage, localCa: { leafLifetimeMs: 1500 } })
    await first.manage([stored])
    await first.close()
    await new Promise((resolve) => setTimeout(resolve, 1700))
    state.broken = true
    const restarted = createCertificateManager({ directoryUrl: 'local', storage, localCa: { leafLifetimeMs: 1500 } })
    await expect(restarted.manage([names])).rejects.toThrow('lock service down')
    return restarted
  }

  it('does not take an expired certificate stored under another of its names (a new list is missing, not expired)', async () => {
    const restarted = await restartAfterExpiry(['y.example.test'], ['x.example.test', 'y.example.test'])
    expect(restarted.list()[0]).toMatchObject({ names: ['x.example.test', 'y.example.test'], status: 'missing' })
    await restarted.close()
  })

  it('lists an expired stored certificate as expired after a restart (not missing), so expiry alerts keep firing', async () => {
    const restarted = await restartAfterExpiry(['old.example.test'], ['old.example.test'])
    expect(restarted.list()[0]).toMatchObject({ status: 'expired', renewal: { reason: 'ratio' }, lastError: { message: 'lock service down' } })
    expect(restarted.list()[0]!.notAfter!.getTime()).toBeLessThan(Date.now())
    await restarted.close()
  })
})
