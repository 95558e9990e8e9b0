import { AcmeError, ErrorCodes } from '../errors.js'
import type { LockHandle } from './contract.js'

export const DEFAULT_LOCK_TTL_MS = 30_000
/** Longest lease: Node's timers fire at once past 2^31-1 ms (~24.8 days), which would lose the lock at once. */
export const MAX_LOCK_TTL_MS = 2_147_483_647

/** What an adapter provides for one held lock; `createLockHandle` does the rest. */
export interface LeaseBackend {
  /** Extends the lease if this token still owns it. true: extended; false: gone or taken over. Throws on a transient error. */
  renew (): Promise<boolean>
  /** Frees the lock if this token still owns it; otherwise does nothing. */
  release (): Promise<void>
}

export interface LockHandleInit {
  name: string
  token: string
  fence: number
  ttlMs: number
  /**
   * When the request that acquired the lease was sent (Date.now()). The server's lease may
   * start any time after that, so the local one must count from there and not from when the
   * (possibly slow) reply arrived, or `lost` would fire after another instance took over.
   * Default: now.
   */
  leaseStartedAt?: number
  backend: LeaseBackend
}

/**
 * Wraps an acquired lease in a LockHandle that renews itself every ttlMs/3.
 *
 * Why `lost` fires on a local deadline too: if renewals fail (backend down) or the event loop
 * stalls, another instance may take the lock over once ttlMs has passed since our last good
 * renewal. From then on we cannot know we still hold it, so we must assume we do not. A renewal
 * that comes back `false` proves the loss directly.
 */
export function createLockHandle (init: LockHandleInit): LockHandle {
  const { backend, ttlMs } = init
  if (!(ttlMs > 0 && ttlMs <= MAX_LOCK_TTL_MS)) {
    // the lease is already taken: free it (token-guarded) rather than leave it for a whole ttl
    backend.release().catch(() => {})
    throw new AcmeError(ErrorCodes.INVALID_OPTION, `lock "${init.name}": option "ttlMs" must be from 1 to ${MAX_LOCK_TTL_MS} ms (~24.8 days), got ${String(ttlMs)}`)
  }
  const controller = new AbortController()
  let lastRenewed = Math.min(init.leaseStartedAt ?? Date.now(), Date.now())
  let released = false
  let renewing: Promise<void> | undefined

  const lose = (why: string) => {
    if (controller.signal.aborted) return
    clearInterval(timer)
    clearTimeout(deadline)
    controller.abort(new AcmeError(ErrorCodes.LOCK_LOST, `lock "${init.name}" lost: ${why}`))
  }

  // The deadline has its own timer: a renewal that hangs (a backend that queues commands while
  // disconnected) or fails fast at every tick must not push `lost` past ttlMs, since another
  // instance may take the lock over from then on.
  let deadline: NodeJS.Timeout | undefined
  const armDeadline = () => {
    clearTimeout(deadline)
    deadline = setTimeout(() => lose(`no renewal for ${Date.now() - lastRenewed} ms (ttl ${ttlMs} ms)`), Math.max(0, lastRenewed + ttlMs - Date.now()))
    deadline.unref()
  }

  const renewOnce = async (): Promise<void> => {
    const started = Date.now()
    if (started - lastRenewed >= ttlMs) return lose(`no renewal for ${started - lastRenewed} ms (ttl ${ttlMs} ms)`)
    let ok: boolean
    try {
      ok = await backend.renew()
    } catch (err) {
      if (Date.now() - lastRenewed >= ttlMs) lose(`renewals failing for ${ttlMs} ms: ${(err as Error).message}`)
      return
    }
    if (!ok) return lose('taken over or expired')
    if (controller.signal.aborted || released) return
    // a renewal that took long only extends the lease from when it started
    lastRenewed = started
    armDeadline()
  }

  const tick = () => {
    if (released || controller.signal.aborted) return renewing
    renewing ??= renewOnce().finally(() => { renewing = undefined })
    return renewing
  }
  const every = Math.max(10, Math.floor(ttlMs / 3))
  const timer = setInterval(tick, every)
  timer.unref()
  armDeadline()
  // a slow acquire reply already used up part of the lease: renew now rather than a full tick later
  if (Date.now() - lastRenewed >= every) tick()?.catch(() => {})

  return {
    name: init.name,
    token: init.token,
    fence: init.fence,
    lost: controller.signal,
    async renew () {
      await tick()
      if (controller.signal.aborted) throw controller.signal.reason
      if (released) throw new AcmeError(ErrorCodes.LOCK_LOST, `lock "${init.name}" was released`)
    },
    async release () {
      if (released) return
      released = true
      clearInterval(timer)
      clearTimeout(deadline)
      await renewing
      // After a loss by the local deadline our slow renewals may still have landed, leaving the
      // lease ours on the server: free it, or every other instance waits a whole ttl. The
      // backend's release is token-guarded, so it never frees another holder's lock.
      if (!controller.signal.aborted) await backend.release()
      else await backend.release().catch(() => {})
      if (!controller.signal.aborted) controller.abort(new AcmeError(ErrorCodes.LOCK_LOST, `lock "${init.name}" was released`))
    },
  }
}

/**
 * Calls `tryAcquire` until it returns a handle: immediately, then every `pollMs` (with jitter
 * so contenders spread out), or sooner when `wake` fires. Rejects with ERR_ACME_ABORTED when
 * `signal` aborts; a handle acquired after the abort is released again.
 */
export async function pollForLock (
  name: string,
  tryAcquire: () => Promise<LockHandle | null>,
  opts: { signal?: AbortSignal, pollMs?: number, wake?: (cb: () => void) => () => void } = {}
): Promise<LockHandle> {
  const pollMs = opts.pollMs ?? 250
  const { signal } = opts
  for (;;) {
    if (signal?.aborted) throw abortedError(name, signal)
    const handle = await untilAborted(tryAcquire(), name, signal)
    if (handle) return handle
    await new Promise<void>((resolve) => {
      const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); unsubscribe?.(); resolve() }
      const timer = setTimeout(done, pollMs * (0.5 + Math.random()))
      signal?.addEventListener('abort', done)
      const unsubscribe = opts.wake?.(done)
    })
  }
}

/**
 * The attempt's result, or ERR_ACME_ABORTED as soon as `signal` aborts, without waiting for an
 * attempt in flight (a slow storage call); a lock that attempt still takes is released when it lands.
 */
function untilAborted (attempt: Promise<LockHandle | null>, name: string, signal: AbortSignal | undefined): Promise<LockHandle | null> {
  if (!signal) return attempt
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError(name, signal))
    signal.addEventListener('abort', onAbort, { once: true })
    attempt.then((handle) => {
      signal.removeEventListener('abort', onAbort)
      if (!signal.aborted) resolve(handle)
      else handle?.release().catch(() => {})
    }, (err) => {
      signal.removeEventListener('abort', onAbort)
      reject(err) // nothing if the abort came first
    })
  })
}

/** What closingGate() returns: an adapter's lock acquisitions go through run(); its close() awaits close(). */
export interface ClosingGate {
  run<T> (name: string, acquire: () => Promise<T>): Promise<T>
  /** From now on run() fails with ERR_ACME_CLOSED; resolves once every acquisition in flight has landed. */
  close (): Promise<void>
}

/**
 * For a storage's close(), so that it leaves no lock behind: once close() begins, new lock
 * acquisitions fail with ERR_ACME_CLOSED, and those in flight land (in the adapter's held set)
 * before the adapter releases everything it holds.
 */
export function closingGate (): ClosingGate {
  let closing = false
  const pending = new Set<Promise<unknown>>()
  return {
    run (name, acquire) {
      if (closing) return Promise.reject(new AcmeError(ErrorCodes.CLOSED, `lock "${String(name)}": the storage is closing`))
      const attempt = acquire()
      pending.add(attempt)
      return attempt.finally(() => pending.delete(attempt))
    },
    async close () {
      closing = true
      await Promise.allSettled([...pending])
    },
  }
}

function abortedError (name: string, signal: AbortSignal): AcmeError {
  return new AcmeError(ErrorCodes.ABORTED, `waiting for lock "${name}" was aborted`, { cause: signal.reason })
}
