import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Storage } from '@fastify-acme/core'
import { inProcessPeer, sourceMode, startChildPeer, type Peer } from './peer.js'
import type { StorageFactory } from './peer-ops.js'
import type { StorageContractOptions } from './index.js'

/** Resolved options plus what every test needs: a fresh namespace, storages, peers. */
export interface Suite {
  name: string
  multiProcess: boolean
  lockPollMs: number
  staleSlackMs: number
  raceRounds: number
  /** registers a test whose body gets a fresh context, cleaned up whatever happens */
  test: (name: string, fn: (ctx: TestContext) => Promise<void>, timeoutMs?: number) => void
  /** stops the child processes kept for reuse */
  closePool: () => Promise<void>
}

export interface TestContext {
  /** fresh random namespace of this test */
  ns: string
  /** a new storage instance on this test's namespace (closed after the test) */
  open (): Promise<Storage>
  /** a storage instance on another fresh namespace (closed after the test) */
  openOther (): Promise<Storage>
  /** `n` peers sharing this namespace: child processes, or in-process stand-ins without multiProcess */
  peers (n: number): Promise<Peer[]>
  /** a path in a scratch directory of this test (removed afterwards) */
  scratch (name: string): string
}

/**
 * Child processes cost hundreds of ms each to start (the adapter's imports), so with `reuse`
 * (the runner gave us afterAll to stop them) a peer that a test left alive is reset and kept for
 * the next test. Peers that were killed are simply not returned.
 */
export function createSuite (api: { it: (name: string, fn: () => Promise<void>, timeoutMs?: number) => void }, options: StorageContractOptions, reuse: boolean): Suite {
  const multiProcess = options.multiProcess ?? true
  if (multiProcess && !options.module) throw new Error('storageContract: `module` is required unless multiProcess is false')
  if (!options.module && !options.create) throw new Error('storageContract: give `module` or `create`')
  const exportName = options.exportName ?? 'createStorage'
  const moduleUrl = options.module && (options.module.startsWith('file:') ? options.module : pathToFileURL(options.module).href)
  let imported: Promise<StorageFactory> | undefined
  const factory: StorageFactory = options.create ?? (async (ns) => {
    imported ??= import(moduleUrl!).then((m) => m[exportName] as StorageFactory)
    return (await imported)(ns)
  })
  const childOptions = {
    module: options.module ?? '',
    exportName,
    execArgv: options.execArgv ?? (sourceMode ? ['--import', 'tsx'] : []),
    env: options.env ?? {},
  }

  const pool: Peer[] = []
  const startPeer = async () => multiProcess ? pool.pop() ?? startChildPeer(childOptions) : inProcessPeer(factory)
  const retire = async (peer: Peer, healthy: boolean) => {
    // after a failure a peer may still run work (a lock() that never got its lock): stop it
    if (healthy && reuse && multiProcess && peer.alive()) {
      let timer: NodeJS.Timeout | undefined
      const reset = await Promise.race([
        peer.call('reset', undefined as never).then(() => true, () => false),
        new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), 5000) }),
      ])
      clearTimeout(timer)
      if (reset && peer.alive()) {
        pool.push(peer)
        return
      }
    }
    await peer.close()
  }

  const test: Suite['test'] = (name, fn, timeoutMs = 20_000) => {
    api.it(name, async () => {
      const ns = `contract-${randomBytes(6).toString('hex')}`
      const storages: Storage[] = []
      const peers: Peer[] = []
      let scratchDir: string | undefined
      const ctx: TestContext = {
        ns,
        async open () {
          const s = await factory(ns)
          storages.push(s)
          return s
        },
        async openOther () {
          const s = await factory(`${ns}-other`)
          storages.push(s)
          return s
        },
        async peers (n) {
          const started = await Promise.allSettled(Array.from({ length: n }, startPeer))
          for (const r of started) if (r.status === 'fulfilled') peers.push(r.value)
          const failed = started.find((r) => r.status === 'rejected')
          if (failed) throw failed.reason
          return started.map((r) => (r as PromiseFulfilledResult<Peer>).value)
        },
        scratch (file) {
          scratchDir ??= mkdtempSync(join(tmpdir(), 'storage-contract-'))
          return join(scratchDir, file)
        },
      }
      let passed = false
      try {
        await fn(ctx)
        passed = true
      } finally {
        await Promise.allSettled(peers.map((peer) => retire(peer, passed)))
        await Promise.allSettled(storages.map((s) => s.close?.()))
        if (scratchDir) rmSync(scratchDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
      }
    }, timeoutMs)
  }

  return {
    name: options.name,
    multiProcess,
    lockPollMs: options.lockPollMs ?? 250,
    staleSlackMs: options.staleSlackMs ?? 0,
    raceRounds: options.raceRounds ?? 200,
    test,
    async closePool () {
      await Promise.allSettled(pool.splice(0).map((peer) => peer.close()))
    },
  }
}
