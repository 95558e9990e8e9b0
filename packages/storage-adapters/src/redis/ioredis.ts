import { withTimeout, type RedisArgument, type RedisConnection } from './connection.js'

/** The parts of an ioredis (v5, v6) client the shim uses. */
export interface IoredisClient {
  readonly status: string
  call (command: string, ...args: RedisArgument[]): Promise<unknown>
  callBuffer (command: string, ...args: RedisArgument[]): Promise<unknown>
  duplicate (): IoredisClient
  subscribe (...channels: string[]): Promise<unknown>
  on (event: 'message', listener: (channel: string, message: string) => void): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
  quit (): Promise<unknown>
  disconnect (): void
}

/**
 * Lets redisStorage use an ioredis client: `redisStorage({ client: fromIoredis(new Redis(url)) })`.
 * The client stays yours (close() does not close it); the subscriber connection it duplicates
 * for watch() and lock wake-ups is closed by the storage. ioredis's `keyPrefix` is not applied
 * to the adapter's keys: use the `namespace` option instead.
 */
export function fromIoredis (client: IoredisClient): RedisConnection {
  return {
    send ([command, ...args], opts = {}) {
      const reply = opts.buffers
        ? client.callBuffer(String(command), ...args)
        : client.call(String(command), ...args)
      return opts.timeoutMs === undefined ? reply : withTimeout(reply, opts.timeoutMs, String(command))
    },
    async openSubscriber () {
      const sub = client.duplicate()
      const listeners = new Map<string, (message: string) => void>()
      sub.on('error', () => {})
      sub.on('message', (channel, message) => listeners.get(channel)?.(message))
      return {
        async subscribe (channel, onMessage) {
          listeners.set(channel, onMessage)
          await sub.subscribe(channel)
        },
        async close () {
          await Promise.race([sub.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
          sub.disconnect()
        },
      }
    },
    async close () {},
  }
}
