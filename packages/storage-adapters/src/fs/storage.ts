import { randomUUID } from 'node:crypto'
import type { Dirent } from 'node:fs'
import fs from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import {
  AcmeError, DEFAULT_LOCK_TTL_MS, ErrorCodes, MAX_LOCK_TTL_MS, assertStorageKey, closingGate, createLockHandle, pollForLock,
  type LockHandle, type LockOptions, type Storage, type StorageStat,
} from '@fastify-acme/core'
import { makeDirs, sweepTempFiles, syncDir, writeFileAtomic } from './atomic-file.js'
import { acquireLockFile, releaseLockFile, renewLockFile } from './lock-file.js'

export interface FsStorageOptions {
  /**
   * Directory holding everything. Created with mode 0700 when missing (an existing one keeps its
   * mode; every directory and file created inside is 0700/0600). A relative path is resolved
   * against the working directory when fsStorage() is called. Instances on other machines share
   * it through a network file system only with the caveats in the README (NFS section).
   */
  dir: string
  /** Lease of a lock when lock()/tryLock() get no `ttlMs`, in ms. Default 30 000. */
  lockTtlMs?: number
  /**
   * How often a waiting lock() looks at a held lock again, in ms, jittered by ±50 %. Default
   * 250. Waiters in the same process are woken at once by a release; this paces the others.
   */
  lockPollMs?: number
  /**
   * Temporary files older than this, in ms, are leftovers of writers that crashed; younger ones
   * may belong to a live writer in another process. A sweep deletes them this long after the
   * storage is created: so it also gets the leftovers of the crash that caused this start, and
   * its walk of every directory (about a second of CPU with 10,000 certificates) does not
   * compete with loading them and with the first handshakes. Default 60 000.
   */
  tempMaxAgeMs?: number
}

/**
 * Locks live in `<dir>/#locks/<lock name>/`: `#` is outside the key alphabet, so no key reaches
 * them and list() never shows them.
 */
const LOCKS_DIR = '#locks'
const SEGMENT = /^[A-Za-z0-9._~@+=-]+$/

/** Waiters of this process, by lock directory, so a release here wakes them without polling. */
const localWaiters = new Map<string, Set<() => void>>()

/**
 * Storage in a local directory: keys map to paths under `dir`. Writes are atomic and durable
 * (temp file, fsync, rename, directory fsync); locks are files with a heartbeat and a race-free
 * stale takeover, shared by every process that can reach the directory.
 */
export function fsStorage (options: FsStorageOptions): Storage {
  if (typeof options?.dir !== 'string' || options.dir === '') {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, 'fsStorage: option "dir" must be a non-empty path')
  }
  const lockTtlMs = positive('lockTtlMs', options.lockTtlMs, DEFAULT_LOCK_TTL_MS, MAX_LOCK_TTL_MS)
  const lockPollMs = positive('lockPollMs', options.lockPollMs, 250)
  const tempMaxAgeMs = positive('tempMaxAgeMs', options.tempMaxAgeMs, 60_000)
  const root = resolve(options.dir)
  const held = new Set<LockHandle>()

  // the root is made at the first use; a failure (a disk full, a mount not there yet) is tried again at the next one
  let made: Promise<void> | undefined
  const ready = () => (made ??= makeDirs(root).catch((err: unknown) => { made = undefined; throw storageError('open', root, err) }))
  ready().catch(() => {})
  let sweeping: Promise<unknown> | undefined
  // (setTimeout fires at once past 2^31-1 ms: a longer age waits that long, ~24.8 days, instead)
  const sweepTimer = setTimeout(() => { sweeping = ready().then(() => sweepTempFiles(root, tempMaxAgeMs)).catch(() => 0) }, Math.min(tempMaxAgeMs, 2 ** 31 - 1)).unref()
  let closing: Promise<void> | undefined

  const pathOf = (key: string) => {
    assertStorageKey(key)
    return join(root, ...key.split('/'))
  }
  const lockDirOf = (name: string) => {
    assertStorageKey(name)
    return join(root, LOCKS_DIR, ...name.split('/'))
  }

  const gate = closingGate()
  const tryLock = (name: string, opts: Omit<LockOptions, 'signal'> = {}) => gate.run(name, () => acquire(name, opts))

  const acquire = async (name: string, opts: Omit<LockOptions, 'signal'>): Promise<LockHandle | null> => {
    const dir = lockDirOf(name)
    const ttlMs = positive('ttlMs', opts.ttlMs, lockTtlMs, MAX_LOCK_TTL_MS)
    await ready()
    const token = randomUUID()
    const leaseStartedAt = Date.now() // the record's heartbeat is taken after this
    const fence = await acquireLockFile(dir, token, ttlMs, lockTtlMs).catch((err: unknown) => { throw storageError('lock', name, err) })
    if (fence === null) return null
    const handle = createLockHandle({
      name,
      token,
      fence,
      ttlMs,
      leaseStartedAt,
      backend: {
        renew: () => renewLockFile(dir, fence, token, ttlMs),
        async release () {
          await releaseLockFile(dir, fence, token)
          localWaiters.get(dir)?.forEach((wake) => wake())
        },
      },
    })
    held.add(handle)
    handle.lost.addEventListener('abort', () => held.delete(handle))
    return handle
  }

  return {
    async get (key) {
      const path = pathOf(key)
      await ready()
      try {
        return await fs.readFile(path)
      } catch (err) {
        if (isCode(err, 'ENOENT', 'EISDIR', 'ENOTDIR')) return null
        throw storageError('get', key, err)
      }
    },

    async put (key, value) {
      const path = pathOf(key)
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
        throw new AcmeError(ErrorCodes.INVALID_OPTION, `fsStorage: put("${key}") needs a Uint8Array or a string`)
      }
      await ready()
      for (let attempt = 0; ; attempt++) {
        try {
          return await writeFileAtomic(path, value, { makeDirs: true })
        } catch (err) {
          // the directory is missing, or a concurrent delete pruned it after we created it
          if (!isCode(err, 'ENOENT') || attempt === 3) throw storageError('put', key, err)
        }
        await makeDirs(dirname(path)).catch((err: unknown) => { if (!isCode(err, 'ENOENT')) throw storageError('put', key, err) })
      }
    },

    async delete (key) {
      const path = pathOf(key)
      await ready()
      let removed = true
      try {
        // a value is a file: one unlink. A prefix is a directory: the whole subtree goes
        await fs.unlink(path).catch((err: unknown) => {
          if (isCode(err, 'ENOENT')) removed = false
          else if (isCode(err, 'EISDIR', 'EPERM')) return fs.rm(path, { recursive: true, force: true, maxRetries: 3 })
          else throw err
        })
      } catch (err) {
        if (isCode(err, 'ENOTDIR')) return
        throw storageError('delete', key, err)
      }
      // the directory whose entries changed; nothing removed and nothing pruned: nothing to make durable
      const changed = await pruneEmptyDirs(dirname(path), root) ?? (removed ? dirname(path) : null)
      if (changed) await syncDir(changed).catch(() => {})
    },

    async list (prefix, opts = {}) {
      const base = pathOf(prefix)
      await ready()
      const out: string[] = []
      const walk = async (dir: string, keyPrefix: string): Promise<void> => {
        for (const entry of await readDir(dir, prefix)) {
          if (!SEGMENT.test(entry.name)) continue
          const key = `${keyPrefix}/${entry.name}`
          // a symbolic link is listed as what it points to, as get() and put() follow it
          const st = entry.isSymbolicLink() ? await fs.stat(join(dir, entry.name)).catch(() => null) : entry
          if (st?.isFile()) out.push(key)
          else if (st?.isDirectory()) opts.recursive ? await walk(join(dir, entry.name), key) : out.push(key)
        }
      }
      await walk(base, prefix)
      return out.sort()
    },

    async stat (key): Promise<StorageStat | null> {
      const path = pathOf(key)
      await ready()
      try {
        const st = await fs.stat(path)
        if (st.isFile()) return { size: st.size, modified: st.mtime, isFile: true }
        return st.isDirectory() ? { size: 0, modified: st.mtime, isFile: false } : null
      } catch (err) {
        if (isCode(err, 'ENOENT', 'ENOTDIR')) return null
        throw storageError('stat', key, err)
      }
    },

    tryLock,

    lock (name, opts = {}) {
      let dir: string
      try { dir = lockDirOf(name) } catch (err) { return Promise.reject(err) }
      return pollForLock(name, () => tryLock(name, opts), {
        signal: opts.signal,
        pollMs: lockPollMs,
        wake (cb) {
          let set = localWaiters.get(dir)
          if (!set) localWaiters.set(dir, set = new Set())
          set.add(cb)
          return () => {
            set.delete(cb)
            if (set.size === 0 && localWaiters.get(dir) === set) localWaiters.delete(dir)
          }
        },
      })
    },

    close () {
      closing ??= (async () => {
        await made?.catch(() => {}) // nothing of this storage is left in flight after close()
        await gate.close()
        await Promise.allSettled([...held].map((handle) => handle.release()))
        clearTimeout(sweepTimer) // a sweep not started yet is left to the next start
        await sweeping
      })()
      return closing
    },
  }
}

function positive (name: string, value: unknown, fallback: number, max = Infinity): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    const range = max === Infinity ? 'a positive number of ms' : `a positive number of ms, at most ${max} (~24.8 days: Node's timers cannot count longer)`
    throw new AcmeError(ErrorCodes.INVALID_OPTION, `fsStorage: option "${name}" must be ${range}, got ${String(value)}`)
  }
  return value
}

function isCode (err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '')
}

function storageError (op: string, key: string, err: unknown): AcmeError {
  if (err instanceof AcmeError) return err
  const reason = (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err)
  return new AcmeError(ErrorCodes.STORAGE, `fs storage: ${op} "${key}" failed (${reason})`, { cause: err, retryable: true })
}

async function readDir (dir: string, prefix: string): Promise<Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true })
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return []
    throw storageError('list', prefix, err)
  }
}

/**
 * Removes `dir` and its parents up to `root` while they are empty, so that a directory whose
 * last value was deleted stops being listed. A put racing this recreates what it needs.
 * Returns the directory it stopped at when it removed any (its entries changed), else null.
 */
async function pruneEmptyDirs (dir: string, root: string): Promise<string | null> {
  let pruned = false
  while (dir !== root && dir.startsWith(root + sep)) {
    try {
      await fs.rmdir(dir)
    } catch {
      break
    }
    pruned = true
    dir = dirname(dir)
  }
  return pruned ? dir : null
}
