import type { IssueRequest, IssuedCertificate, Issuer } from '../certificate.js'
import { AcmeError, ErrorCodes, invalidOption } from '../errors.js'
import { normalizeNames } from '../names.js'
import type { Storage } from '../storage/contract.js'
import { localAuthority } from './authority.js'
import { signLeaf } from './certs.js'
import { readCsr } from './csr.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** Options of the embedded local CA (`directoryUrl: 'local'`). Defaults are Caddy's `tls internal` ones. */
export interface LocalIssuerOptions {
  /**
   * Where the root and intermediate (certificate + PKCS#8 key) are kept. Instances sharing
   * the storage share one CA, so a root trusted once covers the whole cluster.
   */
  storage: Storage
  /** Lifetime of the root, created once, in ms. Default 3600 days (about 10 years). */
  rootLifetimeMs?: number
  /**
   * Lifetime of an intermediate, in ms. It is re-issued from the root when a third of it (or
   * less than one leaf lifetime) remains. Must be shorter than the root's. Default 7 days.
   */
  intermediateLifetimeMs?: number
  /** Lifetime of the certificates issued, in ms. Must be shorter than the intermediate's. Default 12 hours. */
  leafLifetimeMs?: number
  /**
   * Start of the CA certificates' common names: "<prefix> - 2026 ECC Root" and
   * "<prefix> - ECC Intermediate". At most 40 characters. Default 'fastify-acme Local Authority'.
   */
  commonNamePrefix?: string
}

/** The embedded local CA, usable wherever an ACME issuer is. */
export interface LocalIssuer extends Issuer {
  readonly key: 'local'
  readonly directoryUrl: 'local'
  /**
   * The root certificate (PEM), created on first use. Clients trust the local CA by trusting
   * it: `tls.connect({ ca })`, NODE_EXTRA_CA_CERTS, or the OS / browser trust store.
   */
  rootCertificate (): Promise<string>
}

/**
 * Creates the local CA issuer: like Caddy's `tls internal`, an ECDSA P-256 root signs a
 * short-lived intermediate, which signs short-lived leaves. Needs no network.
 * `issue()` returns the leaf and the intermediate (not the root).
 */
export function createLocalIssuer (options: LocalIssuerOptions): LocalIssuer {
  const storage = options?.storage
  if (typeof storage !== 'object' || storage === null || typeof storage.get !== 'function' || typeof storage.lock !== 'function') {
    invalidOption('storage', storage, 'a Storage')
  }
  const resolved = resolveLocalCaOptions(options)
  const { leafLifetimeMs } = resolved
  const authority = localAuthority(storage, resolved)

  return {
    key: 'local',
    directoryUrl: 'local',
    async issue (request: IssueRequest): Promise<IssuedCertificate> {
      throwIfAborted(request.signal)
      const names = normalizeNames(request.names)
      const key = await readCsr(request.csr, names)
      const ca = await authority.intermediate()
      throwIfAborted(request.signal)
      const leaf = await signLeaf(ca, { names, ...key, lifetimeMs: leafLifetimeMs })
      return { certificate: leaf + ca.certificate }
    },
    async rootCertificate () {
      return (await authority.root()).certificate
    },
  }
}

/**
 * The local CA's lifetimes and name prefix with their defaults, checked; `prefix` is how the
 * options are named in error messages where they sit under another option (`localCa.`).
 */
export function resolveLocalCaOptions (options: Omit<LocalIssuerOptions, 'storage'>, prefix = ''): Required<Omit<LocalIssuerOptions, 'storage'>> {
  const rootLifetimeMs = lifetime(`${prefix}rootLifetimeMs`, options.rootLifetimeMs, 3600 * DAY)
  const intermediateLifetimeMs = lifetime(`${prefix}intermediateLifetimeMs`, options.intermediateLifetimeMs, 7 * DAY)
  const leafLifetimeMs = lifetime(`${prefix}leafLifetimeMs`, options.leafLifetimeMs, 12 * HOUR)
  if (intermediateLifetimeMs >= rootLifetimeMs) invalidOption(`${prefix}intermediateLifetimeMs`, intermediateLifetimeMs, `less than ${prefix}rootLifetimeMs (${rootLifetimeMs})`)
  if (leafLifetimeMs >= intermediateLifetimeMs) invalidOption(`${prefix}leafLifetimeMs`, leafLifetimeMs, `less than ${prefix}intermediateLifetimeMs (${intermediateLifetimeMs})`)
  const commonNamePrefix = options.commonNamePrefix ?? 'fastify-acme Local Authority'
  if (typeof commonNamePrefix !== 'string' || commonNamePrefix.trim() === '' || commonNamePrefix.length > 40) {
    invalidOption(`${prefix}commonNamePrefix`, commonNamePrefix, 'a non-empty string of at most 40 characters')
  }
  return { rootLifetimeMs, intermediateLifetimeMs, leafLifetimeMs, commonNamePrefix }
}

function lifetime (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1000) invalidOption(option, value, 'a number of ms, at least 1000')
  return value
}

function throwIfAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AcmeError(ErrorCodes.ABORTED, 'local certificate issuance was aborted', { cause: signal.reason })
}
