import type { KeyType } from '../certificate.js'
import type { ChallengeType } from '../challenges/solver.js'
import { resolveDns01Options, type Dns01Config, type ResolvedDns01Options } from '../challenges/dns-01.js'
import { AcmeError, ErrorCodes, invalidOption } from '../errors.js'
import type { Logger } from '../logger.js'
import type { EabCredentials } from '../acme/account.js'
import type { OrderRateLimit } from '../acme/rate-limit.js'
import { DIRECTORY_URL_EXPECTED, isDirectoryUrl, resolveDirectoryUrl } from '../acme/directory.js'
import { KEY_TYPES } from '../keys.js'
import { DEFAULT_RENEWAL_OPTIONS, resolveRenewalOptions, type RenewalOptions } from '../renewal/index.js'
import { resolveLocalCaOptions, type LocalIssuerOptions } from '../local-ca/issuer.js'
import type { Storage } from '../storage/contract.js'
import type { BaseTlsOptions } from '../tls/context-cache.js'

/** One CA to get certificates from. */
export interface IssuerConfig {
  /**
   * 'letsencrypt', 'letsencrypt-staging', 'zerossl', 'google', 'google-staging', 'local' (the
   * embedded CA, no network), or any RFC 8555 directory URL. Default 'local'.
   */
  directoryUrl?: string
  /** account contact; one account is registered per CA and email */
  email?: string
  /** must be true for CAs with terms of service (Let's Encrypt, ZeroSSL, Pebble) */
  termsOfServiceAgreed?: boolean
  /** External Account Binding (ZeroSSL, Google, private CAs) */
  eab?: EabCredentials
  /** extra trust (PEM) for the CA's own HTTPS endpoint, e.g. Pebble's or a private CA's; per manager */
  caBundle?: string | string[]
  /** certificate profile to ask for when the CA offers it (e.g. Let's Encrypt 'shortlived') */
  profile?: string
  /** issuer common name of the chain to prefer when the CA offers alternates */
  preferredChain?: string
  /** client-side limit on new orders per account (default 300 per 3 hours) */
  orderRateLimit?: OrderRateLimit
}

/** Which challenges the manager may answer. The host (the Fastify plugin) serves HTTP-01 and TLS-ALPN-01. */
export interface ChallengeOptions {
  /** HTTP-01 through Http01Responder (default true, or false when dns01 is set: DNS-01 then works alone, as in CertMagic) */
  http01?: boolean
  /** TLS-ALPN-01 through tlsAlpnContext() (default false: the host must route acme-tls/1 to it) */
  tlsAlpn01?: boolean
  /**
   * DNS-01 (needed for wildcards): a provider (e.g. rfc2136Provider() from
   * `@fastify-acme/core/dns/rfc2136`), or `{ provider, resolvers, propagationTimeoutMs,
   * propagationDelayMs, followCnames }` (see Dns01Options). Default: off.
   */
  dns01?: Dns01Config
  /** preference when several apply (default ['http-01', 'tls-alpn-01', 'dns-01']); a type that just failed goes last */
  order?: ChallengeType[]
}

/** Issue certificates at the first TLS handshake for names nobody configured (Caddy's on-demand TLS). */
export interface OnDemandOptions {
  /**
   * Required. Decides whether a name may get a certificate. A denied name never touches storage
   * or the CA. Called at most once per name per `decisionCacheMs`.
   */
  allow: (name: string) => boolean | Promise<boolean>
  /** longest a handshake waits for its certificate, allow() included, in ms (default 30 000) */
  handshakeTimeoutMs?: number
  /** cache allow() answers this long, in ms (default 60 000) */
  decisionCacheMs?: number
  /** most on-demand certificates managed at once (default 10 000) */
  maxCertificates?: number
}

export interface CertificateManagerOptions extends IssuerConfig {
  /** several CAs tried in order (e.g. Let's Encrypt then ZeroSSL); each entry inherits the top-level CA options */
  issuers?: IssuerConfig[]
  /** where accounts, certificates, challenge data and locks live; instances sharing it form a cluster */
  storage: Storage
  /** certificate key algorithm (default 'ec-p256') */
  keyType?: KeyType
  /** keep the private key across renewals (default false: a fresh key per certificate) */
  reuseKey?: boolean
  challenges?: ChallengeOptions
  renewal?: RenewalOptions & {
    /** how often certificates due for renewal are re-read from storage, so one renewed by another instance is served here (default 60 000 ms; instant where the storage can watch) */
    syncIntervalMs?: number
    /** most orders this instance runs at once (default 10) */
    concurrency?: number
    /** after a failure, prove the next attempt against the CA's staging twin first (default true; Let's Encrypt and Google) */
    stagingFallback?: boolean
  }
  onDemand?: OnDemandOptions
  tls?: {
    /** TLS options for every certificate's context (ciphers, minVersion, ...): kept on every swap */
    options?: BaseTlsOptions
    /** most SecureContexts kept built (LRU) */
    maxContexts?: number
  }
  /** lifetimes of the embedded local CA (`directoryUrl: 'local'`): root 10 years, intermediate 7 days, leaves 12 hours by default */
  localCa?: Omit<LocalIssuerOptions, 'storage'>
  /** lease of the per-certificate issuance lock, in ms (default 30 000); renewed while the order runs */
  lockTtlMs?: number
  logger?: Logger
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  issuers: Array<IssuerConfig & { directoryUrl: string }>
  storage: Storage
  keyType: KeyType
  reuseKey: boolean
  challenges: { http01: boolean, tlsAlpn01: boolean, dns01?: ResolvedDns01Options, order: ChallengeType[] }
  renewal: Required<RenewalOptions> & { syncIntervalMs: number, concurrency: number, stagingFallback: boolean }
  onDemand?: Required<OnDemandOptions>
  tls: { options: BaseTlsOptions, maxContexts?: number }
  localCa: Omit<LocalIssuerOptions, 'storage'>
  lockTtlMs: number
  logger?: Logger
}

const ISSUER_FIELDS = ['directoryUrl', 'email', 'termsOfServiceAgreed', 'eab', 'caBundle', 'profile', 'preferredChain', 'orderRateLimit'] as const
/** Every top-level option CertificateManager takes. */
export const MANAGER_OPTION_NAMES: readonly string[] = [...ISSUER_FIELDS, 'issuers', 'storage', 'keyType', 'reuseKey', 'challenges', 'renewal', 'onDemand', 'tls', 'localCa', 'lockTtlMs', 'logger']

/**
 * Refuses an option name that is not one of `known` (a misspelt one would otherwise be ignored
 * and its default used, e.g. `directoryURL` giving the local CA), suggesting the closest name.
 */
export function assertKnownOptions (opts: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue
    const close = known.find((k) => k.toLowerCase() === key.toLowerCase()) ?? known.find((k) => editDistance(k, key) <= 2)
    throw new AcmeError(ErrorCodes.INVALID_OPTION, `unknown option "${prefix}${key}"${close ? ` (did you mean "${prefix}${close}"?)` : ''}`)
  }
}

/** An optional object option (undefined: `{}`), its keys checked against `known` unless that is undefined. */
export function objectOption<T extends object> (name: string, value: T | undefined, known: readonly string[] | undefined): Partial<T> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalidOption(name, value, 'an object')
  if (known) assertKnownOptions(value, known, `${name}.`)
  return value
}

/** TLS options for every certificate's context take no key or certificate: each certificate brings its own. */
export function refuseKeyMaterial (name: string, options: object): void {
  for (const key of ['key', 'cert', 'pfx', 'passphrase']) {
    if (key in options) throw new AcmeError(ErrorCodes.INVALID_OPTION, `option "${name}.${key}" is not accepted: each certificate brings its own key and chain`)
  }
}

export function booleanOption (name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') invalidOption(name, value, 'true or false')
}

const CHALLENGE_TYPES: readonly ChallengeType[] = ['http-01', 'tls-alpn-01', 'dns-01']

/** `challenges.order`: a preference, so the enabled types it leaves out come after it, in the default order. */
function challengeOrder (order: unknown): ChallengeType[] {
  if (order === undefined) return [...CHALLENGE_TYPES]
  if (!Array.isArray(order) || order.some((t) => !CHALLENGE_TYPES.includes(t)) || new Set(order).size !== order.length) {
    invalidOption('challenges.order', order, `a list of distinct challenge types from ${CHALLENGE_TYPES.map((t) => `'${t}'`).join(', ')}`)
  }
  return [...order, ...CHALLENGE_TYPES.filter((t) => !order.includes(t))]
}

/** Edits (insert, delete, replace, swap of neighbours) between two names. */
function editDistance (a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** Applies defaults and validates every option; throws ERR_ACME_INVALID_OPTION naming the bad one. */
export function resolveOptions (opts: CertificateManagerOptions): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') invalidOption('options', opts, 'an object')
  assertKnownOptions(opts, MANAGER_OPTION_NAMES)
  const storage = opts.storage
  if (!storage || typeof storage.get !== 'function' || typeof storage.put !== 'function' || typeof storage.lock !== 'function') {
    invalidOption('storage', storage, 'a Storage (e.g. fsStorage({ dir }) from @fastify-acme/storage-adapters/fs)')
  }
  const base: IssuerConfig = {}
  for (const field of ISSUER_FIELDS) if (opts[field] !== undefined) (base as Record<string, unknown>)[field] = opts[field]
  if (opts.issuers !== undefined && (!Array.isArray(opts.issuers) || opts.issuers.length === 0)) invalidOption('issuers', opts.issuers, 'a non-empty array')
  const issuers = (opts.issuers ?? [{}]).map((entry, i) => {
    if (opts.issuers && entry !== null && typeof entry === 'object') assertKnownOptions(entry, ISSUER_FIELDS, `issuers[${i}].`)
    return validateIssuer({ ...base, ...entry }, opts.issuers ? `issuers[${i}].` : '')
  })

  const keyType = opts.keyType ?? 'ec-p256'
  if (!KEY_TYPES.includes(keyType)) invalidOption('keyType', keyType, `one of ${KEY_TYPES.join(', ')}`)

  const ch = objectOption('challenges', opts.challenges, ['http01', 'tlsAlpn01', 'dns01', 'order'])
  for (const flag of ['http01', 'tlsAlpn01'] as const) booleanOption(`challenges.${flag}`, ch[flag])
  const dns01 = ch.dns01 === undefined ? undefined : resolveDns01Options(ch.dns01)
  const challenges = {
    http01: ch.http01 ?? ch.dns01 === undefined,
    tlsAlpn01: ch.tlsAlpn01 ?? false,
    ...(dns01 ? { dns01 } : {}),
    order: challengeOrder(ch.order),
  }
  if (!challenges.http01 && !challenges.tlsAlpn01 && !challenges.dns01 && issuers.some((i) => i.directoryUrl !== 'local')) {
    invalidOption('challenges', ch, 'at least one enabled challenge (http01, tlsAlpn01 or dns01)')
  }

  const renewal = objectOption('renewal', opts.renewal, [...Object.keys(DEFAULT_RENEWAL_OPTIONS), 'syncIntervalMs', 'concurrency', 'stagingFallback'])
  const { syncIntervalMs = 60_000, concurrency = 10, stagingFallback = true, ...policy } = renewal
  booleanOption('renewal.stagingFallback', stagingFallback)
  booleanOption('reuseKey', opts.reuseKey)
  positiveInteger('renewal.syncIntervalMs', syncIntervalMs)
  // a timer's delay: Node fires at once past 2^31-1 ms
  if (syncIntervalMs > 2 ** 31 - 1) invalidOption('renewal.syncIntervalMs', syncIntervalMs, 'at most 2147483647 ms (~24.8 days)')
  positiveInteger('renewal.concurrency', concurrency)
  const lockTtlMs = opts.lockTtlMs ?? 30_000
  positiveInteger('lockTtlMs', lockTtlMs)

  const tls = objectOption('tls', opts.tls, ['options', 'maxContexts'])
  const maxContexts = tls.maxContexts
  if (maxContexts !== undefined && (!Number.isSafeInteger(maxContexts) || maxContexts < 1)) invalidOption('tls.maxContexts', maxContexts, 'a positive integer')
  const tlsOptions = objectOption('tls.options', tls.options, undefined)
  refuseKeyMaterial('tls.options', tlsOptions)
  const localCa = resolveLocalCaOptions(objectOption('localCa', opts.localCa, ['rootLifetimeMs', 'intermediateLifetimeMs', 'leafLifetimeMs', 'commonNamePrefix']), 'localCa.')

  let onDemand: Required<OnDemandOptions> | undefined
  if (opts.onDemand !== undefined) {
    objectOption('onDemand', opts.onDemand, ['allow', 'handshakeTimeoutMs', 'decisionCacheMs', 'maxCertificates'])
    if (typeof opts.onDemand.allow !== 'function') invalidOption('onDemand.allow', opts.onDemand.allow, 'a function (name) => boolean: on-demand TLS without it would let anyone make you order certificates')
    onDemand = { handshakeTimeoutMs: 30_000, decisionCacheMs: 60_000, maxCertificates: 10_000, ...opts.onDemand }
    positiveInteger('onDemand.handshakeTimeoutMs', onDemand.handshakeTimeoutMs)
    positiveInteger('onDemand.maxCertificates', onDemand.maxCertificates)
    if (!Number.isSafeInteger(onDemand.decisionCacheMs) || onDemand.decisionCacheMs < 0) invalidOption('onDemand.decisionCacheMs', onDemand.decisionCacheMs, 'a non-negative integer (0: ask every time)')
  }

  return {
    issuers,
    storage,
    keyType,
    reuseKey: opts.reuseKey === true,
    challenges,
    renewal: { ...resolveRenewalOptions(policy), syncIntervalMs, concurrency, stagingFallback },
    ...(onDemand ? { onDemand } : {}),
    tls: { options: tlsOptions, ...(maxContexts !== undefined ? { maxContexts } : {}) },
    localCa,
    lockTtlMs,
    ...(opts.logger ? { logger: opts.logger } : {}),
  }
}

function validateIssuer (cfg: IssuerConfig, prefix: string): IssuerConfig & { directoryUrl: string } {
  const raw = cfg.directoryUrl ?? 'local'
  if (typeof raw !== 'string') invalidOption(`${prefix}directoryUrl`, raw, 'a string')
  const directoryUrl = resolveDirectoryUrl(raw)
  if (!isDirectoryUrl(directoryUrl)) invalidOption(`${prefix}directoryUrl`, raw, DIRECTORY_URL_EXPECTED)
  if (cfg.email !== undefined && (typeof cfg.email !== 'string' || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(cfg.email))) {
    invalidOption(`${prefix}email`, cfg.email, 'an email address')
  }
  if (cfg.termsOfServiceAgreed !== undefined && typeof cfg.termsOfServiceAgreed !== 'boolean') {
    invalidOption(`${prefix}termsOfServiceAgreed`, cfg.termsOfServiceAgreed, 'a boolean')
  }
  if (cfg.eab !== undefined) {
    if (typeof cfg.eab?.kid !== 'string' || cfg.eab.kid === '') invalidOption(`${prefix}eab.kid`, cfg.eab?.kid, 'a non-empty string')
    if (typeof cfg.eab.hmacKey !== 'string' || !/^[A-Za-z0-9_\-+/]+=*$/.test(cfg.eab.hmacKey)) {
      // never echo the HMAC key itself: it is a secret
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `option "${prefix}eab.hmacKey" must be a base64url string (value not shown: it is a secret)`)
    }
  }
  const bundles = cfg.caBundle === undefined ? [] : [cfg.caBundle].flat()
  for (const pem of bundles) {
    if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) invalidOption(`${prefix}caBundle`, pem, 'PEM certificate text (-----BEGIN CERTIFICATE-----)')
  }
  for (const field of ['profile', 'preferredChain'] as const) {
    if (cfg[field] !== undefined && typeof cfg[field] !== 'string') invalidOption(`${prefix}${field}`, cfg[field], 'a string')
  }
  if (cfg.orderRateLimit !== undefined) {
    positiveInteger(`${prefix}orderRateLimit.orders`, cfg.orderRateLimit?.orders)
    positiveInteger(`${prefix}orderRateLimit.windowMs`, cfg.orderRateLimit?.windowMs)
  }
  return { ...cfg, directoryUrl }
}

function positiveInteger (name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) invalidOption(name, value, 'a positive integer')
}
