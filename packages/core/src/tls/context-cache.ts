/*
 * Wiring for the plugin (tls/wiring.test.ts runs this recipe against real sockets):
 * - One cache per manager: set(primary, bundle) on load/obtain/renew/remote change, delete on revoke.
 * - acmeHttps() = { ...tlsOptions, ...secureContextOptions(defaultName) or a self-signed bootstrap,
 *   SNICallback, ALPNCallback }. Node copies only key and chain from the context SNICallback returns;
 *   versions, ciphers, curves, ALPN and ticket keys come from the server's own context, so the user's
 *   tlsOptions must be in the server options too.
 * - ALPNCallback({ servername, protocols }) runs first, `this` = the TLSSocket: if protocols include
 *   'acme-tls/1' and a challenge is pending under servername (keyed by tlsAlpnServername()), flag the
 *   socket with a symbol and return 'acme-tls/1'; else the first of 'h2'/'http/1.1' offered. Returning
 *   undefined refuses the handshake. With ALPNCallback, https no longer adds 'http/1.1' by itself.
 * - SNICallback(name, cb), same `this` (undocumented): cb(null, flagged ? challenge.context :
 *   cache.lookup(name)), synchronously; undefined means the server default. It must never throw.
 *   A server without SNICallback: this.setKeyCert(challenge.context) in ALPNCallback instead.
 * - Clients without SNI get the server default: when the default certificate changes, on EVERY binding
 *   server.setSecureContext({ ...secureContextOptions(defaultName), ticketKeys: server.getTicketKeys() }).
 */
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls'
import { AcmeError, ErrorCodes, describe, invalidOption } from '../errors.js'
import { Slot, SlotLru } from './lru.js'

/** TLS options applied to every context built: what tls.createSecureContext takes, minus key and cert. */
export type BaseTlsOptions = Omit<SecureContextOptions, 'key' | 'cert' | 'pfx' | 'passphrase'>

/** A certificate to serve, as set() takes it. */
export interface ServableCertificate {
  /** every name it covers, normalised (lower case, no trailing dot); `*.parent` for a wildcard */
  names: string[]
  /** PEM chain, leaf first */
  certificate: string
  /** PEM private key of the leaf */
  privateKey: string
  notAfter: Date
}

/** A certificate the cache serves, as certificateFor() returns it. */
export interface ServedCertificate extends Readonly<ServableCertificate> {
  readonly primaryName: string
}

export interface ContextCacheOptions {
  /**
   * Most SecureContexts kept built at once (least recently used evicted). Default
   * DEFAULT_MAX_CONTEXTS. Each costs ~26-35 KB of native memory and ~1 ms to build.
   */
  maxContexts?: number
  /**
   * Applied to every context and to secureContextOptions(); key, cert, pfx and passphrase are
   * ignored. Node takes only the key and chain from a context SNICallback returns, so these
   * matter where a context is a server's own (setSecureContext, a TLSSocket's secureContext).
   */
  tlsOptions?: BaseTlsOptions
  /**
   * Called when a certificate's context cannot be built (bad PEM, key not matching). Its lookups
   * then return undefined (the server default) until it is set() again. Default: none.
   */
  onBuildError?: (error: AcmeError, primaryName: string) => void
  /**
   * Frees a context's native memory (~26 KB) as soon as it is evicted, replaced or dropped,
   * instead of at the next full garbage collection: under handshakes spread over far more names
   * than maxContexts, RSS stays flat instead of growing by the garbage. Only safe when every
   * context lookup() returns reaches Node in the same tick (an SNICallback that calls cb at once)
   * and the server has no 'OCSPRequest' listener: Node reads the context again after that
   * listener answers, and a closed context crashes the process (SIGSEGV). Default false.
   */
  closeEvicted?: boolean
}

/**
 * Measured (Node 20, OpenSSL 3): a built context ~26-35 KB RSS, a certificate without one ~3 KB.
 * 1,000 contexts keep 10,000 certificates near 6 KB each, under a 10 KB budget with room for GC
 * lag, while up to 1,000 hot names never rebuild; a cold name pays one build (~1 ms).
 */
export const DEFAULT_MAX_CONTEXTS = 1000

const END_CERT = '-----END CERTIFICATE-----'
const IGNORED_TLS_OPTIONS = ['key', 'cert', 'pfx', 'passphrase']

/**
 * The certificates a TLS server currently serves, by name, with their SecureContexts built
 * lazily on first lookup and kept in a bounded LRU. A class, because lookup() is the
 * SNICallback hot path: a hit is two Map reads and a few pointer moves, with no allocation.
 * Everything is synchronous, so a lookup never sees a half-applied set() or delete().
 */
export class ContextCache {
  readonly maxContexts: number
  #builds = 0
  #evictions = 0
  #tlsOptions: BaseTlsOptions = {}
  readonly #onBuildError: ContextCacheOptions['onBuildError']
  readonly #closeEvicted: boolean
  readonly #byPrimary = new Map<string, Slot>()
  /** name or `*.parent` -> the slot serving it (the most recently set one wins) */
  readonly #byName = new Map<string, Slot>()
  /** names claimed by more than one certificate: the slots waiting behind the winner */
  readonly #shadowed = new Map<string, Slot[]>()
  /** chain tails (intermediates) -> [shared string, number of slots using it] */
  readonly #tails = new Map<string, [string, number]>()
  readonly #lru = new SlotLru()

  constructor (options: ContextCacheOptions = {}) {
    const max = options.maxContexts ?? DEFAULT_MAX_CONTEXTS
    if (!Number.isSafeInteger(max) || max < 1) invalidOption('maxContexts', max, 'a positive integer')
    this.maxContexts = max
    this.#onBuildError = options.onBuildError
    this.#closeEvicted = options.closeEvicted === true
    if (options.tlsOptions !== undefined) this.setTlsOptions(options.tlsOptions)
  }

  /** contexts built since creation (for metrics) */
  get builds (): number {
    return this.#builds
  }

  /** contexts dropped to respect maxContexts */
  get evictions (): number {
    return this.#evictions
  }

  /** number of certificates */
  get size (): number {
    return this.#byPrimary.size
  }

  /** number of SecureContexts currently built (never above maxContexts) */
  get contextCount (): number {
    return this.#lru.size
  }

  /**
   * Installs or replaces the certificate stored under `primaryName`, for all its names at once.
   * Its old context is dropped, and connections already open keep theirs. Nothing is parsed
   * here (see onBuildError). A replaced certificate that had a context built (its names are in
   * use) gets its new one built right after, in a setImmediate, so that no handshake waits the
   * ~1 ms a build costs; any other is built by the first handshake that needs it.
   */
  set (primaryName: string, cert: ServableCertificate): void {
    if (typeof primaryName !== 'string' || primaryName === '') invalidOption('primaryName', primaryName, 'a non-empty string')
    if (!Array.isArray(cert?.names) || cert.names.length === 0) invalidOption('names', cert?.names, 'a non-empty array of names')
    if (typeof cert.certificate !== 'string' || !cert.certificate.includes(END_CERT)) invalidOption('certificate', cert.certificate, 'a PEM chain')
    if (typeof cert.privateKey !== 'string' || cert.privateKey === '') invalidOption('privateKey', cert.privateKey, 'a PEM private key')
    if (!(cert.notAfter instanceof Date) || Number.isNaN(cert.notAfter.getTime())) invalidOption('notAfter', cert.notAfter, 'a valid Date')
    const names = [...new Set(cert.names.map((name) => {
      if (typeof name !== 'string' || name === '') invalidOption('names', name, 'non-empty strings')
      return normalizeServername(name)
    }))]
    const cut = cert.certificate.indexOf(END_CERT) + END_CERT.length
    const slot = new Slot(primaryName, names, flatCopy(cert.certificate.slice(0, cut)),
      this.#shareTail(cert.certificate.slice(cut)), cert.privateKey, cert.notAfter.getTime())

    const old = this.#byPrimary.get(primaryName)
    this.#byPrimary.set(primaryName, slot)
    for (const name of names) {
      const current = this.#byName.get(name)
      if (current !== undefined && current !== old) this.#shadow(name, current)
      this.#byName.set(name, slot)
    }
    if (old === undefined) return
    const hot = old.context !== undefined
    this.#retire(old)
    if (hot) {
      setImmediate(() => {
        if (this.#byPrimary.get(primaryName) === slot && slot.context === undefined) this.#contextOf(slot)
      }).unref()
    }
  }

  /** Stops serving the certificate stored under `primaryName`. Returns whether there was one. */
  delete (primaryName: string): boolean {
    const slot = this.#byPrimary.get(primaryName)
    if (slot === undefined) return false
    this.#byPrimary.delete(primaryName)
    this.#retire(slot)
    return true
  }

  /**
   * The SNICallback hot path: the context for `servername` (exact name first, then `*.parent`
   * for one label below parent), built on first use. Undefined when no certificate covers the
   * name or its context cannot be built. Never throws.
   */
  lookup (servername: string): SecureContext | undefined {
    const slot = this.#byName.get(servername) ?? this.#find(servername)
    return slot === undefined ? undefined : this.#contextOf(slot)
  }

  /** Whether a certificate covers `servername` (same matching as lookup()). */
  has (servername: string): boolean {
    return this.#find(servername) !== undefined
  }

  /** The certificate lookup() would serve for `servername`, without building anything. */
  certificateFor (servername: string): ServedCertificate | undefined {
    const slot = this.#find(servername)
    if (slot === undefined) return undefined
    const { primaryName, names, leaf, tail, privateKey, notAfterMs } = slot
    return { primaryName, names: [...names], certificate: leaf + tail, privateKey, notAfter: new Date(notAfterMs) }
  }

  /**
   * The chain stored under `primaryName`, built from the cache's own copies of its leaf and
   * (shared) intermediates, so that a caller keeping it holds no second copy.
   */
  chain (primaryName: string): string | undefined {
    const slot = this.#byPrimary.get(primaryName)
    return slot === undefined ? undefined : slot.leaf + slot.tail
  }

  /**
   * Full options for server.setSecureContext() or tls.createServer(): tlsOptions plus the key
   * and chain serving `servername`. Add `ticketKeys: server.getTicketKeys()` when swapping a
   * running server's context, or Node replaces its ticket keys (see the note at the top).
   */
  secureContextOptions (servername: string): SecureContextOptions | undefined {
    const slot = this.#find(servername)
    return slot === undefined ? undefined : this.#optionsOf(slot)
  }

  /** Replaces the base TLS options; every built context is dropped and rebuilt on demand. */
  setTlsOptions (options: BaseTlsOptions): void {
    if (options === null || typeof options !== 'object') invalidOption('tlsOptions', options, 'an object')
    const base: Record<string, unknown> = { ...options }
    for (const key of IGNORED_TLS_OPTIONS) delete base[key]
    try {
      tls.createSecureContext(base as SecureContextOptions)
    } catch (cause) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `option "tlsOptions" was refused by Node: ${(cause as Error).message}`, { cause })
    }
    this.#tlsOptions = base
    this.#dropContexts()
  }

  /** Drops every built context (they are rebuilt on demand) and forgets build failures. */
  #dropContexts (): void {
    this.#lru.clear((slot) => this.#release(slot))
    for (const slot of this.#byPrimary.values()) slot.failed = false
  }

  #find (servername: string): Slot | undefined {
    const name = normalizeServername(servername)
    const exact = this.#byName.get(name)
    if (exact !== undefined) return exact
    const dot = name.indexOf('.')
    return dot > 0 ? this.#byName.get(`*${name.slice(dot)}`) : undefined
  }

  #contextOf (slot: Slot): SecureContext | undefined {
    if (slot.context !== undefined) {
      this.#lru.touch(slot)
      return slot.context
    }
    if (slot.failed) return undefined
    let context: SecureContext
    try {
      context = tls.createSecureContext(this.#optionsOf(slot))
    } catch (cause) {
      slot.failed = true
      const error = new AcmeError(ErrorCodes.STORAGE_CORRUPT,
        `cannot build a TLS context for ${describe(slot.primaryName)}: ${(cause as Error).message}`, { cause })
      try { this.#onBuildError?.(error, slot.primaryName) } catch {}
      return undefined
    }
    this.#builds++
    slot.context = context
    this.#lru.push(slot)
    if (this.#lru.size > this.maxContexts) {
      const victim = this.#lru.oldest as Slot
      this.#lru.remove(victim)
      this.#release(victim)
      this.#evictions++
    }
    return context
  }

  #optionsOf (slot: Slot): SecureContextOptions {
    return { ...this.#tlsOptions, key: slot.privateKey, cert: slot.leaf + slot.tail }
  }

  /** Takes a replaced or deleted slot out of service: its context, its names, its chain tail. */
  #retire (slot: Slot): void {
    this.#lru.remove(slot)
    this.#release(slot)
    for (const name of slot.names) {
      const waiting = this.#shadowed.get(name)
      if (this.#byName.get(name) === slot) {
        const next = waiting?.pop()
        if (next === undefined) this.#byName.delete(name)
        else this.#byName.set(name, next)
      } else if (waiting !== undefined) {
        const at = waiting.indexOf(slot)
        if (at >= 0) waiting.splice(at, 1)
      }
      if (waiting?.length === 0) this.#shadowed.delete(name)
    }
    const shared = this.#tails.get(slot.tail)
    if (shared !== undefined && --shared[1] === 0) this.#tails.delete(slot.tail)
  }

  /** Forgets a slot's context; a slot taken out of the LRU only. */
  #release (slot: Slot): void {
    // Open connections are unaffected: Node copied the key and chain into them (UseSNIContext).
    if (this.#closeEvicted) slot.context?.context.close()
    slot.context = undefined
  }

  #shadow (name: string, slot: Slot): void {
    const waiting = this.#shadowed.get(name)
    if (waiting === undefined) this.#shadowed.set(name, [slot])
    else waiting.push(slot)
  }

  #shareTail (tail: string): string {
    const shared = this.#tails.get(tail)
    if (shared !== undefined) {
      shared[1]++
      return shared[0]
    }
    const copy = flatCopy(tail)
    this.#tails.set(copy, [copy, 1])
    return copy
  }
}

/** Lower case, no trailing dot: how names are stored, so how servernames are looked up. */
function normalizeServername (name: string): string {
  const lower = name.toLowerCase()
  return lower.endsWith('.') ? lower.slice(0, -1) : lower
}

/** A copy that does not keep the (larger) string it was sliced from alive. */
function flatCopy (text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8')
}
