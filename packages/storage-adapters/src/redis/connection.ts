import { AcmeError, ErrorCodes } from '@fastify-acme/core'

/** A command argument as sent on the wire. */
export type RedisArgument = string | Buffer

/**
 * What redisStorage needs from a Redis client: raw commands and a second connection for
 * SUBSCRIBE. Built from a node-redis client by default; `fromIoredis()` builds one from ioredis.
 * Implement it yourself to plug in another client.
 */
export interface RedisConnection {
  /**
   * Sends one command. Bulk strings come back as Buffers when `buffers` is true, else as
   * strings; integers as numbers; nil as null. Rejects when no reply came within `timeoutMs`.
   */
  send (args: RedisArgument[], opts?: { buffers?: boolean, timeoutMs?: number }): Promise<unknown>
  /** Opens a second connection for SUBSCRIBE (redisStorage closes it). */
  openSubscriber (): Promise<RedisSubscriber>
  /** Closes the client if this connection opened it; a client you passed in stays open. */
  close (): Promise<void>
}

/** A connection in subscriber mode. It resubscribes by itself after a reconnect. */
export interface RedisSubscriber {
  /** Resolves once the server confirmed the subscription. */
  subscribe (channel: string, onMessage: (message: string) => void): Promise<void>
  close (): Promise<void>
}

/** The parts of a node-redis (v5, v6) client redisStorage uses, so any version or generic fits. */
export interface NodeRedisClient {
  readonly isOpen: boolean
  sendCommand (args: readonly RedisArgument[], options?: { timeout?: number, typeMapping?: Record<number, unknown> }): Promise<unknown>
  duplicate (): NodeRedisClient
  connect (): Promise<unknown>
  subscribe (channel: string, listener: (message: string, channel: string) => unknown): Promise<unknown>
  close (): Promise<unknown>
  destroy (): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
}

/** RESP_TYPES.BLOB_STRING in node-redis: map bulk strings to Buffers. */
const BUFFER_REPLIES = { 36: Buffer }

export function isNodeRedisClient (value: unknown): value is NodeRedisClient {
  const v = value as Partial<NodeRedisClient> | null
  return typeof v?.sendCommand === 'function' && typeof v.duplicate === 'function'
}

export function isRedisConnection (value: unknown): value is RedisConnection {
  const v = value as Partial<RedisConnection> | null
  return typeof v?.send === 'function' && typeof v.openSubscriber === 'function'
}

/**
 * Wraps a node-redis client. `owned` says whether close() closes it. `onError` receives the
 * client's connection errors (node-redis crashes the process on an 'error' event nobody listens to).
 */
export function nodeRedisConnection (client: NodeRedisClient, owned: boolean, onError: (err: Error) => void): RedisConnection {
  return {
    send (args, opts = {}) {
      const reply = client.sendCommand(args, {
        timeout: opts.timeoutMs,
        ...(opts.buffers ? { typeMapping: BUFFER_REPLIES } : {}),
      })
      // node-redis's `timeout` stops counting once the command is written: a frozen server
      // (SIGSTOP, a dead host behind a live TCP connection) would hang the call forever.
      return opts.timeoutMs === undefined ? reply : withTimeout(reply, opts.timeoutMs, String(args[0]))
    },
    async openSubscriber () {
      const sub = client.duplicate()
      sub.on('error', onError)
      // not awaited here: while Redis is unreachable node-redis keeps retrying, and the caller
      // must still be able to close this connection
      const connected = sub.connect()
      connected.catch(() => {})
      return {
        subscribe: async (channel, onMessage) => {
          await connected
          await sub.subscribe(channel, onMessage)
        },
        close: () => closeNodeRedis(sub),
      }
    },
    close: async () => { if (owned) await closeNodeRedis(client) },
  }
}

// close() waits for pending replies; when the server is gone that can take forever, so give up after a second.
async function closeNodeRedis (client: NodeRedisClient): Promise<void> {
  if (!client.isOpen) return
  let timer: NodeJS.Timeout | undefined
  const graceful = client.close().then(() => true, () => false)
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, 1000, false) })
  if (!await Promise.race([graceful, timeout])) client.destroy()
  clearTimeout(timer)
}

export function errorText (err: unknown): string {
  const e = err as (Error & { code?: string, errors?: unknown[] }) | undefined
  if (e?.message) return e.message
  // a connection that tried IPv4 and IPv6 fails with an AggregateError without a message
  const inner = Array.isArray(e?.errors) ? e.errors.map((x) => (x as Error)?.message).filter(Boolean) : []
  if (inner.length > 0) return inner.join('; ')
  if (e?.code) return e.code
  // node-redis's TimeoutError keeps the name 'Error' and no message (a server that cannot be reached)
  if (e?.name === 'TimeoutError' || e?.constructor?.name === 'TimeoutError') return 'timed out: no answer from the server (is it reachable?)'
  return String(e?.name ?? err)
}

export function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new AcmeError(ErrorCodes.STORAGE, `redis ${what} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
