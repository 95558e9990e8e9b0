import type { Logger } from '../logger.js'
import { nextCheckDelay, renewalTime } from '../renewal/index.js'
import { ariCheckAt } from './ari-refresh.js'
import type { Managed } from './manager.js'
import type { ResolvedOptions } from './options.js'

export interface SchedulerDeps {
  renewal: ResolvedOptions['renewal']
  managed: () => Iterable<Managed>
  logger: Logger
  /** load, obtain or renew (the manager decides which; failures are already reported by it) */
  renew: (m: Managed) => Promise<void>
  /** serve what storage holds, if another instance renewed it (with ifModified: only when its stat changed) */
  sync: (m: Managed, ifModified?: boolean) => Promise<void>
  /** whether `m` needs an order now */
  due: (m: Managed) => boolean
  refreshAri: (m: Managed) => Promise<void>
}

const MIN_WAKE_MS = 1000

/**
 * Storage reads, loads and ARI checks in flight at once per pass (at least renewal.concurrency,
 * so that orders are not held back). Few, so that a handshake's own load, which does not wait
 * for this pass, is not queued behind thousands of reads at startup.
 */
const WORKERS = 8

/** Runs `job` over `items` with at most `limit` at once: `limit` workers, not one promise per item. */
async function eachLimited<T> (items: T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => { while (next < items.length) await job(items[next++]!) }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** Whether `m` waits for its next attempt time (null: attempts stopped until a forced renewal). */
export function inBackoff (m: Managed, now = Date.now()): boolean {
  return m.nextAttemptAt === null || (m.nextAttemptAt !== undefined && m.nextAttemptAt.getTime() > now)
}

/**
 * The maintenance loop. It wakes every checkIntervalMs (with jitter), and earlier when a
 * certificate's renewal time, retry time or ARI check comes first, so short-lived
 * certificates renew on time. A second, lighter loop re-reads from storage the certificates
 * that are due, so one renewed by another instance is served here within syncIntervalMs.
 * Every timer is unref'd: it never keeps a process alive.
 */
export class Scheduler {
  #timer?: NodeJS.Timeout
  /** when #timer fires (ms since the epoch) */
  #timerAt = Infinity
  #syncTimer?: NodeJS.Timeout
  #running = false
  #stopped = true

  readonly #workers: number

  constructor (private readonly deps: SchedulerDeps) {
    this.#workers = Math.max(WORKERS, deps.renewal.concurrency)
  }

  start (): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule(0)
    this.#syncTimer = setInterval(() => { this.#syncDue().catch(() => {}) }, this.deps.renewal.syncIntervalMs)
    this.#syncTimer.unref()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearInterval(this.#syncTimer)
  }

  /**
   * Makes sure a check runs by `at` (ms since the epoch): a failure outside the loop (a
   * handshake, manage() after start()) sets a retry time that may come before the next wake.
   * A check running now schedules its own next wake from every retry time when it ends.
   */
  wakeBy (at: number): void {
    if (!this.#stopped && !this.#running && at < this.#timerAt) this.#schedule(Math.max(MIN_WAKE_MS, at - Date.now()))
  }

  #schedule (ms: number): void {
    clearTimeout(this.#timer)
    this.#timerAt = Date.now() + ms
    this.#timer = setTimeout(() => { this.#tick().catch((err) => this.deps.logger.error({ err: (err as Error).message }, 'maintenance failed')) }, ms)
    this.#timer.unref()
  }

  async #tick (): Promise<void> {
    this.#timerAt = Infinity
    if (this.#stopped) return
    this.#running = true
    try {
      const now = Date.now()
      await eachLimited([...this.deps.managed()], this.#workers, async (m) => {
        if (this.#stopped) return // closed during the tick: leave the rest alone
        // a backoff holds orders, not reads: a certificate another instance stored since is served (and ends it)
        if (inBackoff(m, now)) {
          await this.deps.sync(m, true).catch(() => {})
          return
        }
        if (this.deps.due(m)) {
          if (m.bundle) await this.deps.sync(m).catch(() => {})
          await this.deps.renew(m).catch(() => {})
          return
        }
        // a forced renewal or a revocation elsewhere shows up here (at once where storage can watch)
        await this.deps.sync(m, true).catch(() => {})
        if (m.bundle && ariCheckAt(m) <= now) {
          await this.deps.refreshAri(m).catch((err) => {
            this.deps.logger.warn({ names: m.names, err: (err as Error).message }, 'ARI check failed')
          })
        }
      })
    } finally {
      this.#running = false
      if (!this.#stopped) this.#schedule(this.#nextWake())
    }
  }

  #nextWake (): number {
    const now = Date.now()
    let next = now + nextCheckDelay(this.deps.renewal)
    for (const m of this.deps.managed()) {
      // a retry time only while it is ahead: one passed for a certificate not due (a failed
      // forced renewal) would otherwise wake every check at once, each reading all of storage
      if (inBackoff(m, now)) {
        if (m.nextAttemptAt) next = Math.min(next, m.nextAttemptAt.getTime())
      } else if (m.bundle) {
        next = Math.min(next, renewalTime(m.bundle, this.deps.renewal).at.getTime())
      } else if (!m.inflight) {
        next = now // nothing served and free to try
      }
      if (!m.bundle) continue
      if (m.bundle.ari || m.ariRetry) next = Math.min(next, ariCheckAt(m))
    }
    return Math.max(MIN_WAKE_MS, next - now)
  }

  async #syncDue (): Promise<void> {
    const now = Date.now()
    const due = [...this.deps.managed()].filter((m) => m.bundle && !m.inflight && renewalTime(m.bundle, this.deps.renewal).at.getTime() <= now)
    await eachLimited(due, this.#workers, (m) => this.deps.sync(m).catch(() => {}))
  }
}
