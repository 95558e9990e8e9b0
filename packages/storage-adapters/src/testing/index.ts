import type { Storage } from '@fastify-acme/core'
import { atomicityTests } from './atomicity.js'
import { basicTests } from './basics.js'
import { createSuite } from './context.js'
import { lockFailureTests } from './lock-failures.js'
import { lockTests } from './locks.js'
import { nameTests } from './names.js'

/** The parts of a test runner the suite needs (vitest, node:test, mocha, jest all fit). */
export interface TestApi {
  describe: (name: string, fn: () => void) => void
  it: (name: string, fn: () => Promise<void> | void, timeoutMs?: number) => void
  /**
   * Optional. When given, child processes are reused from test to test (each is reset between
   * tests) and stopped here, which saves most of their start-up time; without it every test
   * starts and stops its own.
   */
  afterAll?: (fn: () => Promise<void> | void) => void
}

/** How the suite builds the storage under test, here and in child processes. */
export interface StorageContractOptions {
  /** shown in test names, e.g. 'fs', 'redis', 's3' */
  name: string
  /**
   * Absolute path (or file URL) of a module whose export `exportName` is
   * `(namespace: string) => Storage | Promise<Storage>`. Every call with the same namespace must
   * reach the same data; different namespaces must not see each other. The suite calls it in
   * this process and in child processes (real processes, for crash and lock tests).
   * Required unless `multiProcess` is false and `create` is given.
   */
  module?: string
  /** default 'createStorage' */
  exportName?: string
  /**
   * The same factory as `module`'s export, for this process only. Defaults to importing `module`.
   * Use it for a storage that lives in this process (memoryStorage) together with `multiProcess: false`.
   */
  create?: (namespace: string) => Storage | Promise<Storage>
  /**
   * Whether storages built from `module` in different processes share data and locks (default
   * true). With false (e.g. memoryStorage), the multi-process tests run with in-process peers
   * instead of child processes, and the tests that kill a process (a writer mid-put, a lock
   * holder) are left out, since they need a second process.
   */
  multiProcess?: boolean
  /** node flags for child processes, e.g. ['--import', 'tsx'] when `module` is TypeScript */
  execArgv?: string[]
  /** extra environment for child processes (e.g. the backend's URL) */
  env?: Record<string, string>
  /**
   * How often the adapter's waiting lock() polls, in ms (default 250). A waiter must get a
   * released lock within 1.5 x this + 500 ms.
   */
  lockPollMs?: number
  /**
   * How much later than `ttlMs` after the last renewal the backend may see a lock as stale, in ms
   * (default 0). For backends whose clock has coarse steps (S3's LastModified is in whole
   * seconds) set e.g. 1000. Takeover must still never happen before `ttlMs`.
   */
  staleSlackMs?: number
  /** rounds of the 8-contender stale-takeover race (default 200) */
  raceRounds?: number
}

/**
 * Registers the storage contract tests (see the Storage interface in @fastify-acme/core) with
 * your test runner. Run it once per adapter; every test gets a fresh random namespace.
 *
 * ```ts
 * import { afterAll, describe, it } from 'vitest'
 * import { storageContract } from '@fastify-acme/storage-adapters/testing'
 * storageContract({ describe, it, afterAll }, { name: 'mine', module: new URL('./my-factory.js', import.meta.url).href })
 * ```
 */
export function storageContract (api: TestApi, options: StorageContractOptions): void {
  const suite = createSuite(api, options, api.afterAll !== undefined)
  api.describe(`storage contract: ${options.name}`, () => {
    api.afterAll?.(() => suite.closePool())
    api.describe('values', () => basicTests(suite))
    api.describe('names and keys', () => nameTests(suite))
    api.describe('atomicity and visibility', () => atomicityTests(suite))
    api.describe('locks', () => lockTests(suite))
    api.describe('lock failures', () => lockFailureTests(suite))
  })
}

export type { Storage }
