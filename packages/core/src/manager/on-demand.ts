import type { Logger } from '../logger.js'
import { isIpAddress } from '../names.js'
import type { Managed } from './manager.js'
import type { OnDemandOptions } from './options.js'
import { untilAborted } from './waiting.js'

const MAX_DECISIONS = 10_000
const WARN_EVERY_MS = 10_000
const TIMED_OUT = Symbol('timed out')

/**
 * On-demand TLS: a name nobody configured gets a certificate at its first handshake, if and
 * only if allow(name) says so. allow() runs before anything else, so a denied name never
 * touches storage or the CA; its answer is cached (bounded) so a flood of random names costs
 * one allow() call each and no state beyond the decision cache.
 */
export class OnDemand {
  /** allow()'s answers; undefined: it gave none (threw, or did not answer in time) */
  readonly #decisions = new Map<string, { allowed: Promise<boolean | undefined>, at: number }>()
  /** names whose first order failed -> when the next handshake may try again (ms) */
  readonly #failed = new Map<string, number>()
  /** per warning: when it was last logged, and how many since were left out */
  readonly #warned = new Map<string, { at: number, left: number }>()

  constructor (
    private readonly opts: Required<OnDemandOptions>,
    private readonly logger: Logger,
    private readonly add: (name: string) => Managed,
    /** how many on-demand certificates are managed now */
    private readonly count: () => number
  ) {}

  /** The managed entry for `name` if allow() admits it; undefined when denied or over the limit. */
  async admit (name: string, signal?: AbortSignal): Promise<Managed | undefined> {
    const retryAt = this.#failed.get(name)
    if (retryAt !== undefined) {
      if (retryAt > Date.now()) return undefined
      this.#failed.delete(name)
    }
    // the handshake stops waiting when the app closes; allow() cannot be stopped, its answer is still cached
    if (await untilAborted(this.#decide(name), signal, false) !== true) return undefined
    signal?.throwIfAborted()
    if (this.count() >= this.opts.maxCertificates) {
      this.#warn({ name, max: this.opts.maxCertificates }, 'on-demand certificate limit reached; not issuing')
      return undefined
    }
    return this.add(name)
  }

  /**
   * An admitted name whose order failed before it ever had a certificate: the manager drops it
   * (it takes no place under maxCertificates and is not retried in the background), and its
   * handshakes are refused here, touching nothing, until `retryAt`; the next one then tries again.
   */
  failed (name: string, retryAt: number): void {
    setBounded(this.#failed, name, retryAt)
  }

  /**
   * allow()'s answer for `name` (cached like the handshakes' ones), without admitting it: true,
   * false, or undefined when allow() gave none (threw, or did not answer in time).
   */
  allowed (name: string): Promise<boolean | undefined> {
    return this.#decide(name)
  }

  /**
   * A warning a flood of random names would repeat once per name (allow() down, the limit
   * reached): logged at most every WARN_EVERY_MS, with how many were left out since.
   */
  #warn (fields: { name: string } & Record<string, unknown>, msg: string): void {
    const now = Date.now()
    const last = this.#warned.get(msg)
    if (last && now - last.at < WARN_EVERY_MS) {
      last.left++
      return
    }
    this.logger.warn(last?.left ? { ...fields, leftOut: last.left } : fields, msg)
    this.#warned.set(msg, { at: now, left: 0 })
  }

  #decide (name: string): Promise<boolean | undefined> {
    const now = Date.now()
    const cached = this.#decisions.get(name)
    if (cached && now - cached.at < this.opts.decisionCacheMs) return cached.allowed
    const decision: { allowed: Promise<boolean | undefined>, at: number } = { allowed: Promise.resolve(false), at: now }
    decision.allowed = (async () => {
      let timer: NodeJS.Timeout | undefined
      try {
        // a handshake waits at most handshakeTimeoutMs, allow() included
        const answer = await Promise.race([
          this.opts.allow(name),
          // unref'd: an allow() that never settles must not keep the process alive after close
          new Promise<typeof TIMED_OUT>((resolve) => { timer = setTimeout(resolve, this.opts.handshakeTimeoutMs, TIMED_OUT).unref() }),
        ])
        if (answer !== TIMED_OUT) return answer === true
        this.#warn({ name, ms: this.opts.handshakeTimeoutMs }, 'on-demand allow() did not answer in time; denying this handshake')
        if (this.#decisions.get(name) === decision) this.#decisions.delete(name) // not a decision: ask again next time
        return undefined
      } catch (err) {
        this.#warn({ name, err: (err as Error).message }, 'on-demand allow() threw; denying')
        return undefined
      } finally {
        clearTimeout(timer)
      }
    })()
    setBounded(this.#decisions, name, decision)
    return decision.allowed
  }
}

/**
 * Whether on-demand TLS may consider a (normalized) SNI name at all, before allow(): a host name
 * with a dot. A wildcard is no host name (its certificate would then serve names allow() never
 * saw), an IP literal is not allowed in SNI (RFC 6066) and a single label gets no public certificate.
 */
export function onDemandCandidate (name: string): boolean {
  return !name.includes('*') && !isIpAddress(name) && name.includes('.')
}

/** Sets `key` as the newest entry of `map`, dropping the oldest past MAX_DECISIONS. */
function setBounded<V> (map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > MAX_DECISIONS) map.delete(map.keys().next().value!)
}
