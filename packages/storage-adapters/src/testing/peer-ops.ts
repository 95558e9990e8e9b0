import { existsSync } from 'node:fs'
import type { LockHandle, Storage } from '@fastify-acme/core'
import { makeValue, seedOf, sleep } from './values.js'

export type StorageFactory = (namespace: string) => Storage | Promise<Storage>

interface Held {
  handle: LockHandle
  lostAt?: number
}

/**
 * What one peer (a child process, or an in-process stand-in when the backend cannot be shared
 * between processes) does on the suite's behalf. Every operation names its namespace, so one
 * peer can serve several storages; lock handles are kept by lock name.
 */
export function createPeerOps (factory: StorageFactory) {
  const storages = new Map<string, Promise<Storage>>()
  const held = new Map<string, Held>()
  const loops = new Map<string, { stop: boolean, written: number, done: Promise<void> }>()

  const storage = (ns: string) => {
    let s = storages.get(ns)
    if (!s) storages.set(ns, s = Promise.resolve(factory(ns)))
    return s
  }
  const keep = (name: string, handle: LockHandle) => {
    const entry: Held = { handle }
    handle.lost.addEventListener('abort', () => { entry.lostAt = Date.now() })
    held.set(name, entry)
  }
  const heldOf = (name: string) => {
    const entry = held.get(name)
    if (!entry) throw new Error(`peer holds no handle for "${name}"`)
    return entry
  }

  const ops = {
    async put (a: { ns: string, key: string, value?: Uint8Array | string, seed?: number, size?: number }) {
      await (await storage(a.ns)).put(a.key, a.value ?? makeValue(a.seed!, a.size!))
      return { at: Date.now() }
    },
    async get (a: { ns: string, key: string }) {
      const value = await (await storage(a.ns)).get(a.key)
      return { value: value && Buffer.from(value).toString('base64') }
    },
    /** reads a makeValue() value: its seed, or null with `present` telling missing from torn */
    async check (a: { ns: string, key: string }) {
      const value = await (await storage(a.ns)).get(a.key)
      return { present: value !== null, seed: seedOf(value) }
    },
    async delete (a: { ns: string, key: string }) {
      await (await storage(a.ns)).delete(a.key)
      return {}
    },
    /** puts makeValue(seed++) at `key` back to back until stopLoop; resolves once started */
    async putLoop (a: { ns: string, key: string, seed: number, size: number }) {
      const s = await storage(a.ns)
      const loop = { stop: false, written: 0, done: Promise.resolve() }
      loop.done = (async () => {
        while (!loop.stop) {
          await s.put(a.key, makeValue(a.seed + loop.written, a.size))
          loop.written++
          // let timers and IPC in, even when put never waits on I/O (an in-memory storage)
          await new Promise(setImmediate)
        }
      })()
      loops.set(a.key, loop)
      return {}
    },
    async stopLoop (a: { key: string }) {
      const loop = loops.get(a.key)!
      loop.stop = true
      await loop.done
      return { written: loop.written }
    },
    async lock (a: { ns: string, name: string, ttlMs?: number }) {
      const before = Date.now()
      const handle = await (await storage(a.ns)).lock(a.name, { ttlMs: a.ttlMs })
      const after = Date.now()
      keep(a.name, handle)
      return { before, after, fence: handle.fence, token: handle.token }
    },
    async lockMany (a: { ns: string, names: string[], ttlMs: number }) {
      const s = await storage(a.ns)
      const fences: number[] = []
      for (const name of a.names) {
        const handle = await s.lock(name, { ttlMs: a.ttlMs })
        keep(name, handle)
        fences.push(handle.fence)
      }
      return { fences, after: Date.now() }
    },
    /** tryLock at wall-clock time `at`, so that several peers try at the same moment */
    async tryLock (a: { ns: string, name: string, ttlMs?: number, at?: number }) {
      const s = await storage(a.ns)
      if (a.at !== undefined) await sleep(a.at - Date.now())
      const handle = await s.tryLock(a.name, { ttlMs: a.ttlMs })
      if (handle) keep(a.name, handle)
      return { won: handle !== null, fence: handle?.fence ?? null }
    },
    async release (a: { name: string }) {
      const entry = heldOf(a.name)
      held.delete(a.name)
      await entry.handle.release()
      return {}
    },
    async state (a: { name: string }) {
      const entry = heldOf(a.name)
      const reason = entry.handle.lost.reason as { code?: string } | undefined
      return { lost: entry.handle.lost.aborted, lostAt: entry.lostAt ?? null, code: reason?.code ?? null }
    },
    /**
     * Blocks the event loop (no timers, no I/O, like a long GC pause or a CPU-bound job) until
     * `resumeFile` exists, then waits up to `graceMs` for the handle of `name` to report `lost`,
     * then calls its release(), which must not free the lock someone else took over.
     */
    async stall (a: { name: string, resumeFile: string, maxMs: number, graceMs: number }) {
      const entry = heldOf(a.name)
      const started = Date.now()
      const tick = new Int32Array(new SharedArrayBuffer(4))
      while (!existsSync(a.resumeFile) && Date.now() - started < a.maxMs) Atomics.wait(tick, 0, 0, 5)
      const resumed = Date.now()
      const lostSeen = await Promise.race([
        new Promise<boolean>((resolve) => {
          if (entry.handle.lost.aborted) resolve(true)
          entry.handle.lost.addEventListener('abort', () => resolve(true))
        }),
        sleep(a.graceMs).then(() => false),
      ])
      const reason = entry.handle.lost.reason as { code?: string } | undefined
      let releaseError: string | null = null
      try { await entry.handle.release() } catch (err) { releaseError = String(err) }
      held.delete(a.name)
      return {
        stalledMs: resumed - started,
        lostAfterMs: lostSeen ? (entry.lostAt ?? Date.now()) - resumed : null,
        code: reason?.code ?? null,
        releaseError,
      }
    },
    /** the mutual exclusion workload: `iterations` increments of a counter value, each under the lock */
    async counter (a: { ns: string, id: string, lockName: string, counterKey: string, markerKey: string, iterations: number }) {
      const s = await storage(a.ns)
      let violations = 0
      const fences: number[] = []
      for (let i = 0; i < a.iterations; i++) {
        const handle = await s.lock(a.lockName, { ttlMs: 15_000 })
        fences.push(handle.fence)
        if (await s.get(a.markerKey) !== null) violations++
        await s.put(a.markerKey, a.id)
        const count = Number(Buffer.from(await s.get(a.counterKey) ?? '0').toString())
        await s.put(a.counterKey, String(count + 1))
        if (Buffer.from(await s.get(a.markerKey) ?? '').toString() !== a.id) violations++
        await s.delete(a.markerKey)
        await handle.release()
      }
      return { violations, fences }
    },
    /** stops loops, releases held locks and closes every storage: back to a fresh peer */
    async reset () {
      loops.forEach((loop) => { loop.stop = true })
      await Promise.allSettled([...loops.values()].map((loop) => loop.done))
      await Promise.allSettled([...held.values()].map((entry) => entry.handle.release()))
      held.clear()
      const all = await Promise.allSettled(storages.values())
      await Promise.allSettled(all.map((r) => r.status === 'fulfilled' ? r.value.close?.() : undefined))
      storages.clear()
      loops.clear()
      return {}
    },
  }
  return { ...ops, close: ops.reset }
}

export type PeerOps = ReturnType<typeof createPeerOps>
export type PeerOp = keyof PeerOps
export type PeerArgs<K extends PeerOp> = Parameters<PeerOps[K]>[0]
export type PeerResult<K extends PeerOp> = Awaited<ReturnType<PeerOps[K]>>
