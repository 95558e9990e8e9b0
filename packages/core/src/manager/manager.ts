import { EventEmitter } from 'node:events'
import type { SecureContext, SecureContextOptions } from 'node:tls'
import { AcmeIssuer } from '../acme/issuer.js'
import { stagingDirectoryOf } from '../acme/directory.js'
import type { CertificateBundle, Issuer } from '../certificate.js'
import { Dns01Solver } from '../challenges/dns-01-solver.js'
import { Http01Responder } from '../challenges/http-01.js'
import type { ChallengeSolver, ChallengeType } from '../challenges/solver.js'
import { ipOfArpaName } from '../challenges/tls-alpn-01.js'
import { TlsAlpnResponder } from '../challenges/tls-alpn-responder.js'
import { AcmeError, ErrorCodes, isAcmeError, describe } from '../errors.js'
import { createLocalIssuer, type LocalIssuer } from '../local-ca/index.js'
import { type Logger, silentLogger } from '../logger.js'
import { normalizeName, normalizeNames } from '../names.js'
import { renewalTime } from '../renewal/index.js'
import { ContextCache, type ServedCertificate } from '../tls/context-cache.js'
import { decodeKeySegment, StorageKeys } from '../storage/keys.js'
import { refreshAri } from './ari-refresh.js'
import { BundleStore } from './bundle-store.js'
import type { ManagerEventName, ManagerEvents } from './events.js'
import { issuerAccepted, issueUnderLock, readOrNull, sameNames, type IssuanceContext } from './issuance.js'
import { OnDemand, onDemandCandidate } from './on-demand.js'
import { resolveOptions, type CertificateManagerOptions, type ResolvedOptions } from './options.js'
import { Scheduler, inBackoff } from './scheduler.js'
import { Semaphore } from './semaphore.js'
import { untilAborted, waitAtMost } from './waiting.js'

/** What list() reports for each managed certificate. */
export interface CertificateInfo {
  names: string[]
  /** 'valid' when a certificate is served; 'missing' before the first one; 'expired' when past notAfter */
  status: 'valid' | 'missing' | 'expired'
  issuer?: { key: string, commonName: string }
  serial?: string
  notBefore?: Date
  notAfter?: Date
  /** when it will be renewed, and why: the CA's ARI window, the lifetime ratio, or the emergency override */
  renewal?: { at: Date, reason: 'ari' | 'ratio' | 'emergency' }
  ari?: CertificateBundle['ari']
  /** the last failed attempt, while failures go on */
  lastError?: { code: string, message: string, at: Date }
  nextAttemptAt?: Date | null
  onDemand: boolean
}

/** One certificate the manager keeps: its names and what is served for them. */
export interface Managed {
  names: string[]
  primary: string
  bundle?: CertificateBundle
  onDemand: boolean
  /** the order (or load) in progress, shared by everyone waiting for it */
  inflight?: Promise<CertificateBundle>
  lastError?: { code: string, message: string, at: Date }
  nextAttemptAt?: Date | null
  /** the bundle vanished from storage while served: replace it */
  missing?: boolean
  /** modification time of the stored bundle at the last sweep, to skip unchanged ones */
  storedModified?: number
  /** the next ARI check of certificate `serial` after a failed or skipped one (see refreshAri) */
  ariRetry?: { serial: string, at: number, failures: number }
}

/** When an on-demand name's failed first order gives no next attempt time (attempts stopped), its handshakes wait this long. */
const ON_DEMAND_RETRY_MS = 3_600_000

/** RFC 9773 §4.3: the fewest ms between two ARI checks of a certificate (less only when checkIntervalMs is less). */
const ARI_MIN_INTERVAL_MS = 60_000

/** Longest a handshake waits for a certificate being loaded or ordered (the order itself goes on). */
const HANDSHAKE_WAIT_MS = 30_000

type Listener<E extends ManagerEventName> = (event: ManagerEvents[E]) => void

/**
 * Keeps a set of certificates (each a list of names) obtained, renewed and served, against one
 * storage and a list of issuers tried in order. Free of any web framework: a host wires
 * secureContext() into SNICallback, respondHttp01() into a route and tlsAlpnContext() into
 * ALPNCallback (see fastify-acme).
 */
export class CertificateManager {
  readonly storage: ResolvedOptions['storage']
  readonly #opts: ResolvedOptions
  readonly #log: Logger
  readonly #events = new EventEmitter()
  readonly #store: BundleStore
  readonly #cache: ContextCache
  readonly #issuers: Issuer[]
  readonly #staging = new Map<string, AcmeIssuer>()
  readonly #managed = new Map<string, Managed>()
  readonly #byName = new Map<string, Managed>()
  readonly #orders: Semaphore
  readonly #failedTypes = new Map<string, ChallengeType>()
  readonly #close = new AbortController()
  readonly #scheduler: Scheduler
  readonly #onDemand?: OnDemand
  readonly http01: Http01Responder
  readonly tlsAlpn01: TlsAlpnResponder
  readonly #solvers: ChallengeSolver[]
  #closed = false
  #onDemandCount = 0
  /** issuer records shared by the bundles in memory (few: one per CA and intermediate name) */
  readonly #issuerObjects = new Map<string, CertificateBundle['issuer']>()

  constructor (options: CertificateManagerOptions) {
    this.#opts = resolveOptions(options)
    this.#log = this.#opts.logger ?? silentLogger
    this.storage = this.#opts.storage
    this.#store = new BundleStore(this.storage)
    this.#cache = new ContextCache({
      tlsOptions: this.#opts.tls.options,
      ...(this.#opts.tls.maxContexts !== undefined ? { maxContexts: this.#opts.tls.maxContexts } : {}),
      onBuildError: (err, name) => this.#log.error({ name, err: err.message }, 'cannot build a TLS context for this certificate'),
    })
    this.http01 = new Http01Responder(this.storage, this.#log)
    this.tlsAlpn01 = new TlsAlpnResponder(this.storage, this.#log)
    const { challenges } = this.#opts
    const available: ChallengeSolver[] = [
      ...(challenges.http01 ? [this.http01] : []),
      ...(challenges.tlsAlpn01 ? [this.tlsAlpn01] : []),
      ...(challenges.dns01 ? [new Dns01Solver(challenges.dns01, this.#log)] : []),
    ]
    this.#solvers = challenges.order.map((t) => available.find((s) => s.type === t)).filter((s): s is ChallengeSolver => s !== undefined)
    this.#issuers = this.#opts.issuers.map((cfg) => cfg.directoryUrl === 'local'
      ? createLocalIssuer({ ...this.#opts.localCa, storage: this.storage })
      : this.#acmeIssuer(cfg.directoryUrl, cfg))
    this.#orders = new Semaphore(this.#opts.renewal.concurrency)
    this.#scheduler = new Scheduler({
      renewal: this.#opts.renewal,
      managed: () => this.#managed.values(),
      logger: this.#log,
      renew: (m) => this.#renewScheduled(m),
      sync: (m, ifModified) => this.#syncFromStorage(m, { ifModified }),
      due: (m) => this.#needsOrder(m),
      refreshAri: (m) => this.#refreshAri(m),
    })
    if (this.#opts.onDemand) {
      this.#onDemand = new OnDemand(this.#opts.onDemand, this.#log, (name) => this.#addOne([name], true), () => this.#onDemandCount)
    }
  }

  /** The renewal policy in force (defaults filled in): ratio, emergency ratio, check interval, ... */
  get renewalOptions (): Readonly<ResolvedOptions['renewal']> {
    return this.#opts.renewal
  }

  /** Whether any issuer is an ACME CA (so challenges must be answered); false when only the local CA issues. */
  get usesAcme (): boolean {
    return this.#issuers.some((i) => i.key !== 'local')
  }

  /** Whether `acme-tls/1` handshakes are answered: TLS-ALPN-01 enabled and an ACME CA that may ask for it. */
  get answersTlsAlpn01 (): boolean {
    return this.#opts.challenges.tlsAlpn01 && this.usesAcme
  }

  // ---- certificates ----------------------------------------------------------------------

  /**
   * Starts managing certificates (each a list of names; a flat list is one certificate) and
   * resolves when each is served: loaded from storage, or obtained. A failed obtain rejects,
   * and keeps being retried in the background on the backoff schedule.
   */
  async manage (certificates: string[] | string[][], opts: { signal?: AbortSignal } = {}): Promise<void> {
    const entries = this.add(certificates)
    const results = await Promise.allSettled(entries.map((m) => this.#ensure(m, { signal: opts.signal })))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
  }

  /** Registers certificates without loading anything (no I/O): handshakes load them on demand, start() does the rest. */
  add (certificates: string[] | string[][]): Managed[] {
    this.#assertOpen()
    if (!Array.isArray(certificates)) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `the certificates to manage must be a list of names (one certificate) or a list of lists of names, got ${describe(certificates)}`)
    }
    const lists = certificates.length > 0 && certificates.every((c) => Array.isArray(c)) ? certificates as string[][] : [certificates as string[]]
    return lists.map((names) => this.#addOne(names, false))
  }

  /** Orders a certificate for `names` unless a valid one is stored; with `force`, orders anyway. */
  async obtain (names: string[], opts: { force?: boolean, signal?: AbortSignal } = {}): Promise<CertificateInfo> {
    const [m] = this.add([names])
    await this.#ensure(m!, { force: opts.force, signal: opts.signal })
    return this.#info(m!)
  }

  /** Renews the certificate serving `name` if it is due, or now with `force`. */
  async renew (name: string, opts: { force?: boolean, signal?: AbortSignal } = {}): Promise<CertificateInfo> {
    const m = this.#find(name)
    await this.#ensure(m, { renewal: true, force: opts.force, signal: opts.signal })
    return this.#info(m)
  }

  /** Revokes the certificate serving `name` at its CA, deletes it from storage and stops managing it. */
  async revoke (name: string, opts: { reason?: number } = {}): Promise<void> {
    const m = this.#find(name)
    const bundle = m.bundle ?? await readOrNull({ store: this.#store, logger: this.#log }, m.primary)
    if (!bundle) throw new AcmeError(ErrorCodes.NOT_MANAGED, `no certificate is stored for ${name}`)
    const issuer = this.#issuers.find((i) => i.key === bundle.issuer.key) ?? this.#revokerOf(bundle)
    if (!issuer?.revoke) throw new AcmeError(ErrorCodes.INVALID_OPTION, `issuer ${bundle.issuer.key} cannot revoke`)
    await issuer.revoke(bundle, opts.reason)
    // where it is stored: under another name when served while a reordered list awaits its order
    await this.#store.delete(bundle.names[0]!)
    this.#unmanage(m)
    this.#emit('revoked', { names: m.names, issuer: bundle.issuer.key, serial: bundle.serial })
  }

  /** The issuer to revoke a certificate whose CA is not configured here; an imported one (no CA of record) goes to the configured CA. */
  #revokerOf (bundle: CertificateBundle): Issuer | undefined {
    if (bundle.issuer.key === 'imported') return this.#issuers.find((i) => i.revoke)
    return bundle.issuer.directoryUrl !== 'local' ? this.#acmeIssuer(bundle.issuer.directoryUrl, this.#opts.issuers[0]!) : undefined
  }

  list (): CertificateInfo[] {
    return [...this.#managed.values()].map((m) => this.#info(m))
  }

  // ---- serving ---------------------------------------------------------------------------

  /** The SecureContext for an SNI name, if its certificate is in memory (SNICallback's synchronous path). */
  secureContext (servername: string): SecureContext | undefined {
    return this.#cache.lookup(servername)
  }

  /**
   * The SecureContext for an SNI name, loading it from storage, or obtaining it on demand when
   * allowed. Undefined when the name is not ours (the server default then answers).
   */
  async loadSecureContext (servername: string, signal?: AbortSignal): Promise<SecureContext | undefined> {
    const hit = this.#cache.lookup(servername)
    if (hit) return hit
    let name: string
    try { name = normalizeName(servername) } catch { return undefined }
    const m = this.#covering(name)
    // one bound for the whole handshake, allow() included (its answer is then ordered in the background)
    const deadline = Date.now() + (this.#opts.onDemand?.handshakeTimeoutMs ?? HANDSHAKE_WAIT_MS)
    if (m) {
      await waitAtMost(this.#ensure(m, { handshake: true }), deadline - Date.now(), signal)
      return this.#cache.lookup(servername)
    }
    if (!this.#onDemand || !onDemandCandidate(name)) return undefined
    const added = await this.#onDemand.admit(name, signal)
    if (!added) return undefined
    await waitAtMost(this.#ensure(added, { handshake: true }), Math.max(0, deadline - Date.now()), signal)
    return this.#cache.lookup(servername)
  }

  /**
   * The primary name of the first configured certificate that is served: the default for
   * clients without SNI. Never an on-demand one: any client could then learn a tenant's name.
   */
  defaultName (): string | undefined {
    for (const m of this.#managed.values()) if (m.bundle && !m.onDemand) return m.primary
    return undefined
  }

  /** The served certificate for a name (PEMs and names), e.g. to set the server's default context. */
  certificateFor (servername: string): ServedCertificate | undefined {
    return this.#cache.certificateFor(servername)
  }

  /** Full options for server.setSecureContext(): the TLS options plus this certificate's key and cert. */
  secureContextOptions (servername: string): SecureContextOptions | undefined {
    return this.#cache.secureContextOptions(servername)
  }

  /** Changes the TLS options (ciphers, minVersion, ...) of every context built from now on. */
  setTlsOptions (options: ResolvedOptions['tls']['options']): void {
    this.#cache.setTlsOptions(options)
  }

  /** HTTP-01: the body for `GET /.well-known/acme-challenge/<token>` with this Host, or null for a 404. */
  respondHttp01 (host: string | undefined, token: string): Promise<string | null> {
    return this.http01.respond(host, token)
  }

  /** TLS-ALPN-01: the challenge context for an `acme-tls/1` handshake to `servername`, if held in memory. */
  tlsAlpnContext (servername: string): SecureContext | undefined {
    return this.tlsAlpn01.contextFor(servername)
  }

  /** TLS-ALPN-01 from memory, or from storage when another instance runs the order; undefined once `signal` aborts. */
  loadTlsAlpnContext (servername: string, signal?: AbortSignal): Promise<SecureContext | undefined> {
    const local = this.tlsAlpn01.contextFor(servername)
    if (local) return Promise.resolve(local)
    // storage is read only for a name served here (for an IP, its .arpa name's address):
    // a handshake offering acme-tls/1 for any other name touches nothing
    const load = this.serves(ipOfArpaName(servername) ?? servername).then((ours) => ours ? this.tlsAlpn01.loadContext(servername) : undefined)
    return untilAborted(load, signal, undefined)
  }

  /**
   * Whether HTTPS for `name` gets a certificate here: managed (a wildcard of it included), or
   * admitted by on-demand allow(). For redirects to https, which should not go to just any Host.
   */
  async serves (name: string): Promise<boolean> {
    let n: string
    try { n = normalizeName(name) } catch { return false }
    if (this.#covering(n)) return true
    return this.#onDemand !== undefined && onDemandCandidate(n) && await this.#onDemand.allowed(n) === true
  }

  /** The managed entry whose names cover a normalized `name`: the name itself, else its wildcard. */
  #covering (name: string): Managed | undefined {
    return this.#byName.get(name) ?? this.#byName.get(`*.${name.slice(name.indexOf('.') + 1)}`)
  }

  /** The local CA's root certificate (PEM), when an issuer is 'local'. */
  async localRootCertificate (): Promise<string | undefined> {
    const local = this.#issuers.find((i): i is LocalIssuer => i.key === 'local')
    return local?.rootCertificate()
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /**
   * Starts the maintenance loop: loads and obtains every managed certificate, then checks on
   * the renewal schedule (every 10 min with jitter, and exactly at each renewal time), re-reads
   * storage for certificates other instances renewed, and refreshes ARI. Timers are unref'd.
   */
  async start (): Promise<void> {
    this.#assertOpen()
    if (this.storage.watch) {
      const stop = await this.storage.watch(StorageKeys.certificatesPrefix, (key) => {
        const m = this.#managed.get(decodeKeySegment(key.split('/')[1] ?? ''))
        if (m) this.#syncFromStorage(m).catch(() => {})
      }).catch((err) => { this.#log.warn({ err: (err as Error).message }, 'storage watch failed; polling instead'); return undefined })
      // close() may have come while the watch was being set up: then nothing may keep running
      if (stop && this.#closed) await stop().catch(() => {})
      else if (stop) this.#close.signal.addEventListener('abort', () => { stop().catch(() => {}) })
    }
    if (!this.#closed) this.#scheduler.start()
  }

  /**
   * Stops timers, waits up to `timeoutMs` (default 10 s) for orders in flight, then aborts
   * them; their locks are released. Does not close the storage (it was handed in).
   */
  async close (opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#scheduler.stop()
    const inflight = [...this.#managed.values()].map((m) => m.inflight).filter(Boolean)
    const timer = setTimeout(() => this.#close.abort(new AcmeError(ErrorCodes.CLOSED, 'certificate manager closed')), opts.timeoutMs ?? 10_000)
    await Promise.allSettled(inflight)
    clearTimeout(timer)
    this.#close.abort(new AcmeError(ErrorCodes.CLOSED, 'certificate manager closed'))
    await Promise.allSettled([...this.#issuers, ...this.#staging.values()].map((i) => i.close?.()))
  }

  on<E extends ManagerEventName> (event: E, listener: Listener<E>): this {
    this.#events.on(event, listener)
    return this
  }

  off<E extends ManagerEventName> (event: E, listener: Listener<E>): this {
    this.#events.off(event, listener)
    return this
  }

  once<E extends ManagerEventName> (event: E, listener: Listener<E>): this {
    this.#events.once(event, listener)
    return this
  }

  // ---- internals -------------------------------------------------------------------------

  #addOne (rawNames: string[], onDemand: boolean): Managed {
    const names = normalizeNames(rawNames)
    const primary = names[0]!
    const existing = this.#managed.get(primary)
    if (existing && sameNames(existing.names, names)) {
      // an on-demand certificate now configured: no longer counted under onDemand.maxCertificates
      if (existing.onDemand && !onDemand) {
        existing.onDemand = false
        this.#onDemandCount--
      }
      return existing
    }
    // entries this list takes names from stop (as one certificate per name set is managed); the
    // certificate of the one under this primary name, else of another it takes names from (the
    // list was reordered), keeps being served until the new list's order replaces it
    const replaced = [...new Set([existing, ...names.map((n) => this.#byName.get(n))].filter((o): o is Managed => o !== undefined))]
    for (const o of replaced) this.#unmanage(o)
    const m: Managed = { names, primary, onDemand }
    if (onDemand) this.#onDemandCount++
    this.#managed.set(primary, m)
    for (const n of names) this.#byName.set(n, m)
    const serving = replaced.find((o) => o.bundle)?.bundle
    if (serving) this.#adopt(m, serving, 'storage')
    return m
  }

  /**
   * A renewal the maintenance loop starts. An on-demand certificate is renewed only while allow()
   * still admits its name (as CertMagic does): when it says no, the certificate is no longer
   * served or renewed (storage keeps it). When allow() gives no answer (it threw, or timed out),
   * the certificate is kept and allow() asked again at the next check, at most a minute away.
   */
  async #renewScheduled (m: Managed): Promise<void> {
    if (m.onDemand && this.#onDemand) {
      const allowed = await this.#onDemand.allowed(m.primary)
      if (allowed === false) {
        this.#log.info({ names: m.names }, 'on-demand name no longer allowed: its certificate is no longer served or renewed')
        if (this.#managed.get(m.primary) === m) this.#unmanage(m)
        return
      }
      if (allowed === undefined) {
        m.nextAttemptAt = new Date(Date.now() + Math.min(60_000, this.#opts.renewal.checkIntervalMs))
        return
      }
    }
    await this.#ensure(m, { renewal: true })
  }

  #unmanage (m: Managed): void {
    if (m.onDemand && this.#managed.get(m.primary) === m) this.#onDemandCount--
    this.#managed.delete(m.primary)
    for (const n of m.names) {
      if (this.#byName.get(n) === m) this.#byName.delete(n)
      this.#failedTypes.delete(n)
    }
    this.#cache.delete(m.primary)
  }

  #find (name: string): Managed {
    const m = this.#byName.get(normalizeName(name))
    if (!m) throw new AcmeError(ErrorCodes.NOT_MANAGED, `${name} is not managed by this certificate manager`)
    return m
  }

  /**
   * Makes sure `m` is served: from memory, from storage, or by ordering (under the cluster lock).
   * Concurrent callers share one promise, so one handshake storm makes one order.
   */
  #ensure (m: Managed, opts: { renewal?: boolean, force?: boolean, handshake?: boolean, signal?: AbortSignal }): Promise<CertificateBundle> {
    // a forced order never merges into one already running: it starts after it
    if (m.inflight && opts.force) return m.inflight.then(() => this.#ensure(m, opts), () => this.#ensure(m, opts))
    if (m.inflight) return m.inflight
    if (!opts.force && !opts.renewal && m.bundle) return Promise.resolve(m.bundle)
    const run = async (): Promise<CertificateBundle> => {
      if (!opts.force && !m.bundle) {
        // also one for another list of names, or an expired one: served (and listed as what it
        // is) until the order below replaces it, rather than nothing
        const stored = await this.#readCovering(m)
        if (stored) {
          this.#adopt(m, stored, 'storage')
          if (!opts.renewal && !this.#needsOrder(m)) return m.bundle!
        }
      }
      if (!opts.force && m.bundle && !this.#needsOrder(m)) return m.bundle
      // a handshake during a backoff this instance knows of: refused here, without the storage
      // check and the lock (~10 storage calls for each handshake to a failing name otherwise)
      if (opts.handshake && inBackoff(m)) {
        const at = m.nextAttemptAt
        throw new AcmeError(ErrorCodes.RATE_LIMITED, `not retrying ${m.primary} before ${at?.toISOString() ?? 'a forced renewal'}` +
          (m.lastError ? ` (last: ${m.lastError.message})` : ''), at ? { retryAfter: at } : {})
      }
      return this.#orders.run(() => this.#order(m, opts))
    }
    m.inflight = run().finally(() => { m.inflight = undefined })
    return m.inflight
  }

  async #order (m: Managed, opts: { force?: boolean, signal?: AbortSignal }): Promise<CertificateBundle> {
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.#close.signal]) : this.#close.signal
    // the issuer a failure is reported against: the last one an order went to (a fallback issuer's
    // failure is the one thrown), or the first when none was reached (lock, storage)
    let issuer = this.#issuers[0]!.key
    try {
      const result = await issueUnderLock(this.#issuanceContext((key) => { issuer = key }), { names: m.names, current: m.bundle, force: opts.force, signal })
      m.lastError = undefined
      m.nextAttemptAt = undefined
      for (const n of m.names) this.#failedTypes.delete(n)
      this.#adopt(m, result.bundle, result.kind === 'ordered' ? 'order' : 'storage')
      if (result.kind === 'ordered') {
        const { bundle, previous, durationMs } = result
        const ref = { names: m.names, issuer: bundle.issuer.key, serial: bundle.serial, notAfter: new Date(bundle.notAfter), durationMs }
        if (previous) this.#emit('renewed', { ...ref, replaced: previous.certId })
        else this.#emit('obtained', ref)
        this.#log.info({ names: m.names, serial: bundle.serial, notAfter: bundle.notAfter, ms: durationMs }, previous ? 'certificate renewed' : 'certificate obtained')
        this.#refreshAri(m).catch((e) => this.#log.warn({ names: m.names, err: (e as Error).message }, 'ARI check failed'))
      }
      return result.bundle
    } catch (err) {
      const e = err as AcmeError & { nextAttemptAt?: Date | null, backoff?: boolean, lastError?: { code: string, message: string, at: string } }
      m.nextAttemptAt = e.nextAttemptAt !== undefined ? e.nextAttemptAt : e.retryAfter
      if (m.onDemand && !m.bundle && this.#onDemand && !isAcmeError(err, ErrorCodes.ABORTED) && !isAcmeError(err, ErrorCodes.CLOSED) &&
        this.#managed.get(m.primary) === m) {
        // an on-demand name that never got a certificate is not kept past a failure (see OnDemand.failed)
        this.#onDemand.failed(m.primary, m.nextAttemptAt?.getTime() ?? Date.now() + ON_DEMAND_RETRY_MS)
        this.#unmanage(m)
      }
      if (m.nextAttemptAt && this.#managed.get(m.primary) === m) this.#scheduler.wakeBy(m.nextAttemptAt.getTime())
      if (e.backoff) {
        if (e.lastError) m.lastError = { ...e.lastError, at: new Date(e.lastError.at) }
        this.#log.debug({ names: m.names, nextAttemptAt: m.nextAttemptAt }, 'waiting for the next attempt time')
        throw err
      }
      m.lastError = { code: e.code ?? 'UNKNOWN', message: e.message, at: new Date() }
      if (!isAcmeError(err, ErrorCodes.ABORTED) && !isAcmeError(err, ErrorCodes.CLOSED)) {
        this.#emit('failed', { names: m.names, issuer, renewal: m.bundle !== undefined, error: e, nextAttemptAt: m.nextAttemptAt ?? null })
        this.#log.error({ names: m.names, code: e.code, err: e.message, nextAttemptAt: m.nextAttemptAt }, 'certificate order failed')
      }
      throw err
    }
  }

  #issuanceContext (onIssuer?: (key: string) => void): IssuanceContext {
    return {
      storage: this.storage,
      store: this.#store,
      issuers: this.#issuers,
      keyType: this.#opts.keyType,
      reuseKey: this.#opts.reuseKey,
      lockTtlMs: this.#opts.lockTtlMs,
      renewal: this.#opts.renewal,
      logger: this.#log,
      stagingOf: (issuer) => this.#stagingOf(issuer),
      onObtaining: (names, issuer, renewal, forced) => {
        onIssuer?.(issuer)
        this.#emit('obtaining', { names, issuer, renewal, forced })
      },
      onLocked: (names, waitMs) => this.#emit('locked', { names, waitMs }),
    }
  }

  #adopt (m: Managed, bundle: CertificateBundle, source: 'order' | 'storage'): void {
    m.missing = undefined
    const same = m.bundle?.serial === bundle.serial // same certificate, maybe newer ARI state
    // one copy in memory of what 10,000 certificates would otherwise each repeat: the names
    // (the bundle's parsed copy is equal to m.names, in the same order), the issuer (one per CA)
    const names = bundle.names.length === m.names.length && bundle.names.every((n, i) => n === m.names[i]) ? m.names : bundle.names
    if (!same) this.#cache.set(m.primary, { names, certificate: bundle.certificate, privateKey: bundle.privateKey, notAfter: new Date(bundle.notAfter) })
    // and the chain: the bundle shares the cache's leaf and intermediates
    m.bundle = { ...bundle, names, issuer: this.#sharedIssuer(bundle.issuer), certificate: this.#cache.chain(m.primary) ?? bundle.certificate }
    if (same) return
    // a new certificate (maybe stored by another instance) ends this instance's failure record
    m.lastError = undefined
    m.nextAttemptAt = undefined
    this.#emit('updated', { names: m.names, issuer: bundle.issuer.key, serial: bundle.serial, notAfter: new Date(bundle.notAfter), source })
  }

  #sharedIssuer (issuer: CertificateBundle['issuer']): CertificateBundle['issuer'] {
    const id = `${issuer.key}\n${issuer.directoryUrl}\n${issuer.commonName}`
    let shared = this.#issuerObjects.get(id)
    if (!shared) this.#issuerObjects.set(id, shared = Object.freeze({ ...issuer }))
    return shared
  }

  #issuerKnown (bundle: CertificateBundle): boolean {
    return issuerAccepted(bundle, this.#issuers)
  }

  /**
   * The certificate stored under `m`'s primary name, else (a list whose first name changed, or a
   * restart after that) an unexpired one stored under another of its names.
   */
  async #readCovering (m: Managed): Promise<CertificateBundle | null> {
    const read = (name: string) => readOrNull({ store: this.#store, logger: this.#log }, name)
    const stored = await read(m.primary)
    if (stored || m.names.length === 1) return stored
    const others = await Promise.all(m.names.slice(1).map(read))
    return others.find((b) => b !== null && Date.parse(b.notAfter) > Date.now()) ?? null
  }

  /**
   * Whether `m` needs an order now: nothing served, for other names or stored under another first
   * name (the list was reordered), due, from a CA no longer configured, or gone from storage.
   */
  #needsOrder (m: Managed): boolean {
    return !m.bundle || m.missing === true || !sameNames(m.bundle.names, m.names) || m.bundle.names[0] !== m.primary || !this.#issuerKnown(m.bundle) ||
      Date.now() >= renewalTime(m.bundle, this.#opts.renewal).at.getTime()
  }

  /**
   * Serves what storage holds if it is a different certificate (another instance renewed it).
   * With `ifModified`, a stat() first skips unchanged values (the periodic sweep). A certificate
   * gone from storage (revoked or deleted elsewhere) keeps being served while a replacement is
   * ordered, under the lock, so the cluster orders one.
   */
  async #syncFromStorage (m: Managed, opts: { ifModified?: boolean } = {}): Promise<void> {
    if (opts.ifModified) {
      const stat = await this.storage.stat(StorageKeys.certificateBundle(m.primary))
      if (stat && stat.modified.getTime() === m.storedModified) return
      if (stat) m.storedModified = stat.modified.getTime()
    }
    const stored = await readOrNull({ store: this.#store, logger: this.#log }, m.primary)
    // (a certificate stored under another primary name, served until this list's first order, is not watched)
    if (!stored && m.bundle && m.bundle.names[0] === m.primary && !m.inflight) {
      this.#log.warn({ names: m.names }, 'the served certificate is gone from storage (revoked or deleted): ordering a new one')
      m.missing = true
      this.#ensure(m, { renewal: true }).catch(() => {})
      return
    }
    // a newer certificate, even one that expires sooner (a forced renewal, a shorter profile)
    if (stored && sameNames(stored.names, m.names) && stored.serial !== m.bundle?.serial && Date.parse(stored.notAfter) > Date.now() &&
      (!m.bundle || Date.parse(stored.obtainedAt) >= Date.parse(m.bundle.obtainedAt))) {
      this.#log.info({ names: m.names, serial: stored.serial }, 'certificate updated from storage')
      this.#adopt(m, stored, 'storage')
    }
  }

  /** Fetches the CA's ARI window and stores the chosen renewal time, when due for a check. */
  #refreshAri (m: Managed): Promise<void> {
    if (this.#closed) return Promise.resolve()
    return refreshAri({
      storage: this.storage,
      store: this.#store,
      issuers: this.#issuers,
      logger: this.#log,
      lockTtlMs: this.#opts.lockTtlMs,
      minIntervalMs: Math.min(ARI_MIN_INTERVAL_MS, this.#opts.renewal.checkIntervalMs),
    }, m)
  }

  #acmeIssuer (directoryUrl: string, cfg: ResolvedOptions['issuers'][number]): AcmeIssuer {
    return new AcmeIssuer({ ...cfg, directoryUrl }, {
      storage: this.storage,
      solvers: this.#solvers,
      logger: this.#log,
      demoted: (names) => names.map((n) => this.#failedTypes.get(n)).filter((t): t is ChallengeType => t !== undefined),
      challengeFailed: (name, type) => { if (this.#byName.has(name)) this.#failedTypes.set(name, type) },
    })
  }

  #stagingOf (issuer: AcmeIssuer): AcmeIssuer | undefined {
    const url = stagingDirectoryOf(issuer.directoryUrl)
    // EAB credentials are per environment (Google's are for production): staging would refuse them
    if (!url || issuer.options.eab) return undefined
    let staging = this.#staging.get(url)
    if (!staging) {
      staging = this.#acmeIssuer(url, { ...issuer.options, directoryUrl: url })
      this.#staging.set(url, staging)
    }
    return staging
  }

  #info (m: Managed): CertificateInfo {
    const b = m.bundle
    const notAfter = b ? new Date(b.notAfter) : undefined
    return {
      names: m.names,
      status: !b ? 'missing' : notAfter! < new Date() ? 'expired' : 'valid',
      ...(b
        ? {
            issuer: { key: b.issuer.key, commonName: b.issuer.commonName },
            serial: b.serial,
            notBefore: new Date(b.notBefore),
            notAfter,
            renewal: renewalTime(b, this.#opts.renewal),
            ...(b.ari ? { ari: b.ari } : {}),
          }
        : {}),
      ...(m.lastError ? { lastError: m.lastError } : {}),
      ...(m.nextAttemptAt !== undefined ? { nextAttemptAt: m.nextAttemptAt } : {}),
      onDemand: m.onDemand,
    }
  }

  #emit<E extends ManagerEventName> (event: E, payload: ManagerEvents[E]): void {
    try {
      this.#events.emit(event, payload)
    } catch (err) {
      this.#log.error({ event, err: (err as Error).message }, 'an event listener threw')
    }
  }

  #assertOpen (): void {
    if (this.#closed) throw new AcmeError(ErrorCodes.CLOSED, 'the certificate manager is closed')
  }
}

/** Creates a certificate manager. See CertificateManagerOptions for every option. */
export function createCertificateManager (options: CertificateManagerOptions): CertificateManager {
  return new CertificateManager(options)
}
