import { randomUUID } from 'node:crypto'
import { AcmeError, ErrorCodes, MAX_LOCK_TTL_MS, closingGate, createLockHandle } from '@fastify-acme/core'
import type { LockHandle } from '@fastify-acme/core'
import type { RedisConnection } from './connection.js'
import { ACQUIRE, RELEASE, RENEW, runScript } from './scripts.js'

export interface RedisLocks {
  tryLock (name: string, ttlMs: number): Promise<LockHandle | null>
  /** releases every lock this storage still holds (close()) */
  releaseAll (): Promise<void>
}

interface LockContext {
  /** `{namespace}`: lock and fence keys share the data's hash tag */
  keyPrefix: string
  releasedChannel: string
  timeoutMs: number
  run: <T>(what: string, fn: (conn: RedisConnection) => Promise<T>) => Promise<T>
}

export function createRedisLocks ({ keyPrefix, releasedChannel, timeoutMs, run }: LockContext): RedisLocks {
  const held = new Map<string, LockHandle>()

  const acquire = async (name: string, ttlMs: number): Promise<LockHandle | null> => {
    if (typeof name !== 'string' || name === '' || name.length > 1024) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `lock name must be a string of 1 to 1024 characters, got ${typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : typeof name}`)
    }
    if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_LOCK_TTL_MS) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `lock option "ttlMs" must be an integer from 1 to ${MAX_LOCK_TTL_MS} (ms, ~24.8 days), got ${String(ttlMs)}`)
    }
    const lockKey = `${keyPrefix}:l:${name}`
    const token = randomUUID()
    const release = (conn: RedisConnection) => runScript(conn, RELEASE, [lockKey], [token, releasedChannel, name], { timeoutMs })
    let fence: unknown
    // the server's lease starts at the SET, somewhere between now and the reply
    const leaseStartedAt = Date.now()
    try {
      fence = await run(`lock "${name}"`, (conn) => runScript(conn, ACQUIRE, [lockKey, `${keyPrefix}:f:${name}`], [token, String(ttlMs)], { timeoutMs }))
    } catch (err) {
      // The SET may have been applied and only the reply lost: free it (by token) so it does not
      // block every instance for a whole lease. If this fails too, the lease runs out by itself.
      run('release', release).catch(() => {})
      throw err
    }
    if (fence == null) return null

    // Each renewal must give up well within the lease: the handle can only notice that renewals
    // are failing (and fire `lost` on time) once a renewal call has returned.
    const renewTimeoutMs = Math.min(timeoutMs, Math.max(50, Math.floor(ttlMs / 3)))
    const handle = createLockHandle({
      name,
      token,
      fence: Number(fence),
      ttlMs,
      leaseStartedAt,
      backend: {
        renew: async () => await run(`renew of lock "${name}"`, (conn) =>
          runScript(conn, RENEW, [lockKey], [token, String(ttlMs)], { timeoutMs: renewTimeoutMs })) === 1,
        release: async () => {
          held.delete(token)
          await run(`release of lock "${name}"`, release)
        },
      },
    })
    held.set(token, handle)
    handle.lost.addEventListener('abort', () => held.delete(token), { once: true })
    return handle
  }

  const gate = closingGate()
  return {
    tryLock: (name: string, ttlMs: number) => gate.run(name, () => acquire(name, ttlMs)),
    async releaseAll () {
      await gate.close()
      await Promise.allSettled([...held.values()].map((handle) => handle.release()))
    },
  }
}
