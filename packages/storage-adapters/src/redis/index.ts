import { AcmeError, DEFAULT_LOCK_TTL_MS, ErrorCodes, MAX_LOCK_TTL_MS, assertStorageKey, maskUrl, pollForLock } from '@fastify-acme/core'
import type { LockHandle, LockOptions, Storage, StorageStat } from '@fastify-acme/core'
import { errorText, isNodeRedisClient, isRedisConnection, nodeRedisConnection, withTimeout } from './connection.js'
import type { NodeRedisClient, RedisConnection, RedisSubscriber } from './connection.js'
import { createRedisLocks, type RedisLocks } from './locks.js'
import { DELETE, LIST_CHILDREN, PUT, STAT, runScript } from './scripts.js'
import { checkRedisServer, type RedisServerCheck } from './server-check.js'

export type { NodeRedisClient, RedisArgument, RedisConnection, RedisSubscriber } from './connection.js'
export { fromIoredis, type IoredisClient } from './ioredis.js'
export type { RedisServerCheck } from './server-check.js'

/** Options of redisStorage(). Pass `client` or `url`. */
export interface RedisStorageOptions {
  /**
   * A connected node-redis client (`createClient()` from `redis` v5 or v6), or a connection
   * made by `fromIoredis(ioredisClient)`. It is yours: close() never closes it.
   */
  client?: NodeRedisClient | RedisConnection
  /**
   * `redis[s]://[[user][:password]@]host[:port][/db]`. The storage opens its own node-redis
   * client (the `redis` package must be installed) and closes it in close().
   */
  url?: string
  /** extra `createClient()` options when `url` is used: socket/TLS settings, reconnectStrategy, ... */
  clientOptions?: Record<string, unknown>
  /**
   * Prefix of every key, inside a hash tag: keys are `{<namespace>}:...`, so all of them live in
   * one Redis Cluster slot. Instances sharing a namespace share certificates and locks.
   * No `{` or `}`. Default 'fastify-acme'.
   */
  namespace?: string
  /** lease of a lock when lock() is called without `ttlMs`, in ms (default 30 000) */
  lockTtlMs?: number
  /** how often a waiting lock() retries if no release message arrives first, in ms (default 250) */
  pollMs?: number
  /** how long one command may take before it fails with ERR_ACME_STORAGE, in ms (default 5000) */
  commandTimeoutMs?: number
  /** check `appendonly` and `maxmemory-policy` at startup and warn about risky values (default true) */
  checkServer?: boolean
  /** receives the startup warnings and connection errors (default: console.warn, each message once per process) */
  logger?: { warn (message: string): void }
}

/** A Storage on Redis, with the optional watch() and close(). */
export interface RedisStorage extends Storage {
  readonly namespace: string
  /** The startup check (run once, at the first operation); resolves with what it found and logged. */
  checkServer (): Promise<RedisServerCheck>
  watch (prefix: string, onChange: (key: string) => void): Promise<() => Promise<void>>
  close (): Promise<void>
}

const warned = new Set<string>()
const consoleOnce = { warn (message: string) { if (!warned.has(message)) { warned.add(message); console.warn(message) } } }

/**
 * Storage on one Redis (standalone, Sentinel or Cluster through the client you pass). Values,
 * their modification times and a directory index change together in one Lua script; locks are
 * SET NX PX leases with Lua compare-and-renew/compare-and-delete and a fence counter.
 */
export function redisStorage (opts: RedisStorageOptions = {}): RedisStorage {
  const namespace = opts.namespace ?? 'fastify-acme'
  if (typeof namespace !== 'string' || !/^[^{}]{1,200}$/.test(namespace)) invalid('namespace', namespace, 'a string of 1 to 200 characters without { or }')
  const timeoutMs = positive('commandTimeoutMs', opts.commandTimeoutMs, 5000)
  const pollMs = positive('pollMs', opts.pollMs, 250)
  const lockTtlMs = positive('lockTtlMs', opts.lockTtlMs, DEFAULT_LOCK_TTL_MS)
  if (lockTtlMs > MAX_LOCK_TTL_MS) invalid('lockTtlMs', lockTtlMs, `at most ${MAX_LOCK_TTL_MS} ms (~24.8 days; Node's timers cannot count longer)`)
  checkConnectionOptions(opts)
  const logger = opts.logger ?? consoleOnce
  const tag = `{${namespace}}`
  const keys = { data: `${tag}:d`, mtime: `${tag}:m`, index: `${tag}:i`, changes: `${tag}:changes`, released: `${tag}:released` }
  const values = [keys.data, keys.mtime, keys.index]

  let closed = false
  let lastError = 0
  const onError = (err: Error) => {
    if (Date.now() - lastError > 30_000) logger.warn(`@fastify-acme/storage-adapters/redis: connection error: ${err.message}`)
    lastError = Date.now()
  }
  const connection = openConnection(opts, onError)
  connection.catch(() => {})
  let check: Promise<RedisServerCheck> | undefined
  const checkServer = () => {
    check ??= connection.then((conn) => checkRedisServer(conn, timeoutMs)).then((result) => {
      for (const warning of result.warnings) logger.warn(warning)
      return result
    })
    return check
  }

  const run = async <T>(what: string, fn: (conn: RedisConnection) => Promise<T>): Promise<T> => {
    if (closed) throw new AcmeError(ErrorCodes.CLOSED, `redis storage "${namespace}" is closed`)
    let conn: RedisConnection
    try {
      conn = await connection
    } catch (err) {
      // openConnection's errors are AcmeErrors already; this keeps anything else (and a URL in it) out
      if (err instanceof AcmeError) throw err
      throw new AcmeError(ErrorCodes.STORAGE, `redis ${what} failed: could not open the connection: ${maskUrl(errorText(err))}`, { retryable: true })
    }
    if (opts.checkServer !== false) checkServer().catch(() => {})
    try {
      return await fn(conn)
    } catch (err) {
      if (err instanceof AcmeError && err.code !== ErrorCodes.STORAGE) throw err
      throw new AcmeError(ErrorCodes.STORAGE, `redis ${what} failed: ${errorText(err)}`, { cause: err, retryable: true })
    }
  }

  // One subscriber connection, opened on first need, carries both change events and lock releases.
  const watchers = new Set<{ prefix: string, onChange: (key: string) => void }>()
  const waiters = new Map<string, Set<() => void>>()
  let subscriber: Promise<RedisSubscriber> | undefined
  const channels = new Map<string, Promise<void>>()
  const listen = async (channel: string, onMessage: (message: string) => void) => {
    if (closed) throw new AcmeError(ErrorCodes.CLOSED, `redis storage "${namespace}" is closed`)
    subscriber ??= connection.then((conn) => withTimeout(conn.openSubscriber(), timeoutMs, 'SUBSCRIBE'))
    const sub = await subscriber.catch((err: unknown) => { subscriber = undefined; throw err })
    let subscribed = channels.get(channel)
    if (subscribed === undefined) {
      subscribed = withTimeout(sub.subscribe(channel, onMessage), timeoutMs, 'SUBSCRIBE')
      channels.set(channel, subscribed)
      subscribed.catch(() => channels.delete(channel))
    }
    await subscribed
  }
  const onChangeMessage = (key: string) => {
    for (const w of watchers) if (w.prefix === '' || key === w.prefix || key.startsWith(`${w.prefix}/`)) w.onChange(key)
  }
  const onReleaseMessage = (name: string) => { for (const wake of waiters.get(name) ?? []) wake() }

  const locks: RedisLocks = createRedisLocks({ keyPrefix: tag, releasedChannel: keys.released, timeoutMs, run })

  return {
    namespace,
    checkServer,

    async get (key) {
      assertStorageKey(key)
      const value = await run(`HGET "${key}"`, (conn) => conn.send(['HGET', keys.data, key], { buffers: true, timeoutMs }))
      if (value == null) return null
      const buf = value as Buffer
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    },

    async put (key, value) {
      assertStorageKey(key)
      const bytes = toBuffer(value)
      await run(`put of "${key}"`, (conn) => runScript(conn, PUT, values, [key, bytes, keys.changes], { timeoutMs }))
    },

    async delete (key) {
      assertStorageKey(key)
      await run(`delete of "${key}"`, (conn) => runScript(conn, DELETE, values, [key, keys.changes], { timeoutMs }))
    },

    async list (prefix, listOpts = {}) {
      assertStorageKey(prefix)
      const found = await run(`list of "${prefix}"`, (conn) => listOpts.recursive
        ? conn.send(['ZRANGEBYLEX', keys.index, `[${prefix}/`, Buffer.concat([Buffer.from(`(${prefix}/`), Buffer.of(0xff)])], { timeoutMs })
        : runScript(conn, LIST_CHILDREN, [keys.index], [prefix], { timeoutMs }))
      return (found as unknown[]).map(String).sort()
    },

    async stat (key): Promise<StorageStat | null> {
      assertStorageKey(key)
      const found = await run(`stat of "${key}"`, (conn) => runScript(conn, STAT, values, [key], { timeoutMs })) as unknown[] | null
      if (found == null) return null
      if (Number(found[0]) < 0) return { size: 0, modified: new Date(0), isFile: false }
      return { size: Number(found[0]), modified: new Date(Number(found[1])), isFile: true }
    },

    tryLock: (name, lockOpts = {}) => locks.tryLock(name, lockOpts.ttlMs ?? lockTtlMs),

    async lock (name, lockOpts: LockOptions = {}): Promise<LockHandle> {
      const ttlMs = lockOpts.ttlMs ?? lockTtlMs
      // Best effort: without the release channel, waiters still find the lock free by polling.
      await listen(keys.released, onReleaseMessage).catch(() => {})
      return abortable(name, lockOpts.signal, pollForLock(name, () => locks.tryLock(name, ttlMs), {
        signal: lockOpts.signal,
        pollMs,
        wake (wake) {
          const set = waiters.get(name) ?? new Set()
          waiters.set(name, set.add(wake))
          return () => { set.delete(wake); if (set.size === 0) waiters.delete(name) }
        },
      }))
    },

    async watch (prefix, onChange) {
      if (prefix !== '') assertStorageKey(prefix)
      await run(`watch of "${prefix}"`, () => listen(keys.changes, onChangeMessage))
      const watcher = { prefix, onChange }
      watchers.add(watcher)
      return async () => { watchers.delete(watcher) }
    },

    async close () {
      if (closed) return
      await locks.releaseAll()
      closed = true
      watchers.clear()
      const sub = await subscriber?.catch(() => undefined)
      await sub?.close()
      await (await connection.catch(() => undefined))?.close()
    },
  }
}

/**
 * Checks `client` and `url` when the storage is made, so that a bad one fails there with
 * ERR_ACME_INVALID_OPTION and not as a raw TypeError at every operation (whose `input` would
 * carry the URL, password included, into the logs).
 */
function checkConnectionOptions (opts: RedisStorageOptions): void {
  if (opts.client !== undefined && opts.url !== undefined) invalid('url', opts.url, 'omitted when `client` is given')
  if (opts.client !== undefined) {
    if (!isRedisConnection(opts.client) && !isNodeRedisClient(opts.client)) invalid('client', opts.client, 'a node-redis client or a connection from fromIoredis()')
    return
  }
  if (typeof opts.url !== 'string' || !/^rediss?:\/\//.test(opts.url)) invalid('url', opts.url, 'a redis:// or rediss:// URL (or pass `client`)')
  // the TypeError is dropped, not kept as cause: its `input` is the whole URL
  let parsed: URL
  try { parsed = new URL(opts.url) } catch { return invalid('url', opts.url, 'a valid redis:// or rediss:// URL (it cannot be parsed)') }
  // what node-redis would refuse later, when it parses the URL itself
  if (!/^\/?(\d+)?$/.test(parsed.pathname)) invalid('url', opts.url, 'a redis URL whose path, if any, is a database number')
  try {
    decodeURIComponent(parsed.username)
    decodeURIComponent(parsed.password)
  } catch {
    invalid('url', opts.url, 'a redis URL with a percent-encoded user name and password')
  }
}

async function openConnection (opts: RedisStorageOptions, onError: (err: Error) => void): Promise<RedisConnection> {
  if (isRedisConnection(opts.client)) return opts.client
  if (isNodeRedisClient(opts.client)) return nodeRedisConnection(opts.client, false, onError)
  const { createClient } = await import('redis')
  let client: NodeRedisClient
  try {
    client = createClient({ ...opts.clientOptions, url: opts.url }) as unknown as NodeRedisClient
  } catch (err) {
    // node-redis parses the URL itself (database, credentials); its errors may quote it
    return invalid('url', opts.url, `a URL node-redis accepts (${maskUrl(errorText(err))})`)
  }
  client.on('error', onError)
  // Not awaited: while Redis is unreachable, commands wait in node-redis's offline queue and
  // fail after commandTimeoutMs instead of blocking the first operation forever.
  client.connect().catch(onError)
  return nodeRedisConnection(client, true, onError)
}

/**
 * Rejects as soon as `signal` aborts, even while an attempt is in flight (a frozen Redis holds
 * it for up to commandTimeoutMs). The attempt finishes in the background and pollForLock
 * releases whatever it got, so no lock is left behind.
 */
function abortable (name: string, signal: AbortSignal | undefined, waiting: Promise<LockHandle>): Promise<LockHandle> {
  if (!signal) return waiting
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new AcmeError(ErrorCodes.ABORTED, `waiting for lock "${name}" was aborted`, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
    waiting.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function toBuffer (value: Uint8Array | string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  return invalid('value', value, 'a Uint8Array or a string')
}

function positive (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0) invalid(name, value, 'a positive integer (ms)')
  return value
}

/** Names the bad value (a URL with its password masked); objects and functions by their type. */
function invalid (name: string, value: unknown, expected: string): never {
  const shown = typeof value === 'string'
    ? JSON.stringify(maskUrl(value))
    : value === null || (typeof value !== 'object' && typeof value !== 'function') ? String(value) : typeof value
  throw new AcmeError(ErrorCodes.INVALID_OPTION, `redisStorage option "${name}" must be ${expected}, got ${shown}`)
}
