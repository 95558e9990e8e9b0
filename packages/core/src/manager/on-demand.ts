import type { Logger } from '../logger.js'
import type { Managed } from './manager.js'
import type { OnDemandOptions } from './options.js'

const MAX_DECISIONS = 10_000

/**
 * On-demand TLS: a name nobody configured gets a certificate at its first handshake, if and
 * only if allow(name) says so. allow() runs before anything else, so a denied name never
 * touches storage or the CA; its answer is cached (bounded) so a flood of random names costs
 * one allow() call each and no state beyond the decision cache.
 */
export class OnDemand {
  readonly #decisions = new Map<string, { allowed: Promise<boolean>, at: number }>()

  constructor (
    private readonly opts: Required<OnDemandOptions>,
    private readonly logger: Logger,
    private readonly add: (name: string) => Managed,
    /** how many on-demand certificates are managed now */
    private readonly count: () => number
  ) {}

  /** The managed entry for `name` if allow() admits it; undefined when denied or over the limit. */
  async admit (name: string, signal?: AbortSignal): Promise<Managed | undefined> {
    if (!await this.#decide(name)) return undefined
    signal?.throwIfAborted()
    if (this.count() >= this.opts.maxCertificates) {
      this.logger.warn({ name, max: this.opts.maxCertificates }, 'on-demand certificate limit reached; not issuing')
      return undefined
    }
    return this.add(name)
  }

  #decide (name: string): Promise<boolean> {
    const now = Date.now()
    const cached = this.#decisions.get(name)
    if (cached && now - cached.at < this.opts.decisionCacheMs) return cached.allowed
    const allowed = (async () => {
      try {
        return await this.opts.allow(name) === true
      } catch (err) {
        this.logger.warn({ name, err: (err as Error).message }, 'on-demand allow() threw; denying')
        return false
      }
    })()
    this.#decisions.delete(name)
    this.#decisions.set(name, { allowed, at: now })
    if (this.#decisions.size > MAX_DECISIONS) this.#decisions.delete(this.#decisions.keys().next().value!)
    return allowed
  }
}
