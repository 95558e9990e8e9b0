import { AcmeError, ErrorCodes } from '../errors.js'
import type { LockHandle } from './contract.js'

export const DEFAULT_LOCK_TTL_MS = 30_000

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
  const controller = new AbortController()
  let lastRenewed = Date.now()
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
  const timer = setInterval(tick, Math.max(10, Math.floor(ttlMs / 3)))
  timer.unref()
  armDeadline()

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
      if (!controller.signal.aborted) await backend.release()
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
