/** How a handshake waits for work it does not own: bounded in time, and ended by the app closing. */

/** Waits for `work` at most `ms` (or until `signal` aborts); never rejects. */
export async function waitAtMost (work: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return
  let timer: NodeJS.Timeout | undefined
  let stop = () => {}
  try {
    await Promise.race([
      work.then(() => {}, () => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms).unref()
        signal?.addEventListener('abort', stop = () => resolve(), { once: true })
      }),
    ])
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', stop)
  }
}

/**
 * `work`'s result, or `onAbort` as soon as `signal` aborts (the work itself goes on). The
 * listener goes away with the call, so a long-lived signal shared by every handshake does not
 * collect them.
 */
export function untilAborted<T> (work: Promise<T>, signal: AbortSignal | undefined, onAbort: T): Promise<T> {
  if (!signal) return work
  if (signal.aborted) return Promise.resolve(onAbort)
  let stop!: () => void
  const aborted = new Promise<T>((resolve) => { stop = () => resolve(onAbort) })
  signal.addEventListener('abort', stop, { once: true })
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', stop))
}
