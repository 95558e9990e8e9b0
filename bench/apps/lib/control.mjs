// The runner talks to a measured process over the IPC channel: events out, commands in.

/**
 * Sends an event to the runner, stamped with this process's clock (ms since the epoch, sub-ms)
 * and its monotonic clock in µs (`hr`, the time base of --cpu-prof profiles).
 */
export function send (event, fields = {}) {
  process.send?.({ event, at: performance.timeOrigin + performance.now(), hr: Number(process.hrtime.bigint() / 1000n), ...fields })
}

/** Answers the runner's commands: `handlers[cmd](message)` resolves with the reply's fields. */
export function serveCommands (handlers) {
  process.on('message', (message) => {
    const handler = handlers[message?.cmd]
    if (!handler) return send('error', { id: message?.id, message: `unknown command ${message?.cmd}` })
    Promise.resolve().then(() => handler(message)).then(
      (reply) => send('reply', { id: message.id, ...reply }),
      (err) => send('reply', { id: message.id, error: err?.stack ?? String(err) })
    )
  })
  process.on('disconnect', () => process.exit(0))
  process.once('SIGTERM', () => process.exit(0))
}

/** RSS after full garbage collections (needs --expose-gc), and the rest of memoryUsage(). */
export async function settledMemory () {
  for (let i = 0; i < 4; i++) {
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return process.memoryUsage()
}

/** Handlers every measured server answers. */
export const commonCommands = {
  cpu: () => ({ cpu: process.cpuUsage(), at: performance.timeOrigin + performance.now() }),
  memory: async () => ({ memory: await settledMemory(), gc: typeof globalThis.gc === 'function' }),
}
