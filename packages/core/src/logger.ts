/** A pino-compatible logger (Fastify's `app.log` fits). Only the levels used here. */
export interface Logger {
  debug (obj: object | string, msg?: string): void
  info (obj: object | string, msg?: string): void
  warn (obj: object | string, msg?: string): void
  error (obj: object | string, msg?: string): void
  child? (bindings: Record<string, unknown>): Logger
}

const noop = () => {}

/** The default: silent. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }
