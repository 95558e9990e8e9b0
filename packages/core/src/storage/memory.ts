import { randomUUID } from 'node:crypto'
import type { LockHandle, LockOptions, Storage, StorageStat } from './contract.js'
import { assertStorageKey } from './keys.js'
import { DEFAULT_LOCK_TTL_MS, createLockHandle, pollForLock } from './lease.js'

/**
 * Storage in process memory: for unit tests and single-process experiments. Nothing survives
 * a restart and nothing is shared between processes.
 */
export function memoryStorage (): Storage {
  const values = new Map<string, { value: Uint8Array, modified: Date }>()
  const locks = new Map<string, { token: string, expires: number }>()
  const fences = new Map<string, number>()
  const waiters = new Set<() => void>()

  const isDir = (key: string) => {
    for (const k of values.keys()) if (k.startsWith(`${key}/`)) return true
    return false
  }

  const tryLock = async (name: string, opts: Omit<LockOptions, 'signal'> = {}): Promise<LockHandle | null> => {
    const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS
    const held = locks.get(name)
    if (held && held.expires > Date.now()) return null
    const token = randomUUID()
    const fence = (fences.get(name) ?? 0) + 1
    fences.set(name, fence)
    locks.set(name, { token, expires: Date.now() + ttlMs })
    return createLockHandle({
      name,
      token,
      fence,
      ttlMs,
      backend: {
        async renew () {
          const current = locks.get(name)
          if (current?.token !== token || current.expires <= Date.now()) return false
          current.expires = Date.now() + ttlMs
          return true
        },
        async release () {
          if (locks.get(name)?.token === token) locks.delete(name)
          for (const wake of waiters) wake()
        },
      },
    })
  }

  return {
    async get (key) {
      assertStorageKey(key)
      const entry = values.get(key)
      return entry ? new Uint8Array(entry.value) : null
    },
    async put (key, value) {
      assertStorageKey(key)
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value
      values.set(key, { value: new Uint8Array(bytes), modified: new Date() })
    },
    async delete (key) {
      assertStorageKey(key)
      for (const k of [...values.keys()]) if (k === key || k.startsWith(`${key}/`)) values.delete(k)
    },
    async list (prefix, opts = {}) {
      assertStorageKey(prefix)
      const out = new Set<string>()
      for (const k of values.keys()) {
        if (!k.startsWith(`${prefix}/`)) continue
        if (opts.recursive) { out.add(k); continue }
        const rest = k.slice(prefix.length + 1)
        out.add(`${prefix}/${rest.split('/')[0]}`)
      }
      return [...out].sort()
    },
    async stat (key): Promise<StorageStat | null> {
      assertStorageKey(key)
      const entry = values.get(key)
      if (entry) return { size: entry.value.byteLength, modified: entry.modified, isFile: true }
      return isDir(key) ? { size: 0, modified: new Date(0), isFile: false } : null
    },
    tryLock,
    lock (name, opts = {}) {
      return pollForLock(name, () => tryLock(name, opts), {
        signal: opts.signal,
        pollMs: 50,
        wake: (cb) => { waiters.add(cb); return () => waiters.delete(cb) },
      })
    },
  }
}
