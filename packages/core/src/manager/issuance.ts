import { AcmeIssuer } from '../acme/issuer.js'
import { certIdOf } from '../acme/ari.js'
import { stagingDirectoryOf } from '../acme/directory.js'
import { type CertificateBundle, type Issuer, type KeyType, readLeaf } from '../certificate.js'
import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import { createCsr, generateKey, pkcs8Pem } from '../keys.js'
import type { Logger } from '../logger.js'
import { attemptAllowed, recordFailure, renewalDue, type RenewalOptions, type RenewalState } from '../renewal/index.js'
import type { Storage } from '../storage/contract.js'
import { LockNames } from '../storage/keys.js'
import type { BundleStore } from './bundle-store.js'

/** What an issuance needs from the manager. */
export interface IssuanceContext {
  storage: Storage
  store: BundleStore
  issuers: Issuer[]
  keyType: KeyType
  reuseKey: boolean
  lockTtlMs: number
  renewal: RenewalOptions & { stagingFallback: boolean }
  logger: Logger
  /** a staging twin of an ACME issuer, built on first use */
  stagingOf: (issuer: AcmeIssuer) => AcmeIssuer | undefined
  /** called once the lock is held, storage re-checked and an order is really going to start */
  onObtaining: (names: string[], issuer: string, renewal: boolean, forced: boolean) => void
  /** how long the issuance lock took to acquire, in ms */
  onLocked: (names: string[], waitMs: number) => void
}

export interface IssuanceRequest {
  names: string[]
  /** the bundle served now, if any */
  current?: CertificateBundle
  /** order even if storage holds a certificate that is not due */
  force?: boolean
  signal?: AbortSignal
}

export type IssuanceResult =
  | { kind: 'ordered', bundle: CertificateBundle, previous?: CertificateBundle, durationMs: number }
  | { kind: 'stored', bundle: CertificateBundle }

/**
 * Gets the certificate for `names` into storage, cluster-safely: take the issuance lock,
 * re-read storage (another instance may have done the work while we waited), then order.
 * Failures are recorded in storage with the next attempt time, so any instance can retry
 * later; nothing sleeps while holding the lock.
 */
export async function issueUnderLock (ctx: IssuanceContext, req: IssuanceRequest): Promise<IssuanceResult> {
  const primary = req.names[0]!
  const checked = ctx.store.check()
  // load the issuers' libraries (the ACME client: ~150 ms of CPU) while the check's I/O runs
  for (const issuer of ctx.issuers) issuer.prepare?.()
  await checked
  const waitStarted = Date.now()
  const lock = await ctx.storage.lock(LockNames.issue(primary), { ttlMs: ctx.lockTtlMs, signal: req.signal })
  ctx.onLocked(req.names, Date.now() - waitStarted)
  const signal = req.signal ? AbortSignal.any([req.signal, lock.lost]) : lock.lost
  let stored: CertificateBundle | null = null
  let state: RenewalState | null = null
  try {
    stored = await readForOrder(ctx, primary)
    if (!req.force && stored && sameNames(stored.names, req.names) && !renewalDue(stored, new Date(), ctx.renewal) &&
      issuerAccepted(stored, ctx.issuers)) {
      return { kind: 'stored', bundle: stored }
    }
    const stateEntry = await ctx.store.readStateEntry(primary)
    state = stateEntry.state
    if (!req.force && !attemptAllowed(state, new Date())) {
      // a backoff recorded (maybe by another instance): not a new failure
      throw Object.assign(new AcmeError(ErrorCodes.RATE_LIMITED, `not retrying ${primary} before ${state?.nextAttemptAt ?? 'a forced renewal'} after ${state?.failures} failures (last: ${state?.lastError.message})`, {
        retryAfter: state?.nextAttemptAt ? new Date(state.nextAttemptAt) : undefined,
      }), { nextAttemptAt: state?.nextAttemptAt ? new Date(state.nextAttemptAt) : null, backoff: true, lastError: state?.lastError })
    }
    const previous = stored && sameNames(stored.names, req.names) ? stored : req.current
    const started = Date.now()
    const bundle = await orderWithIssuers(ctx, req.names, previous, state, signal, req.force === true)
    if (lock.lost.aborted) throw lock.lost.reason
    await ctx.store.write(bundle)
    // under the lock, so nobody recorded a failure since the read: nothing stored, nothing to clear
    if (stateEntry.stored) await ctx.store.writeState(primary, null)
    return { kind: 'ordered', bundle, ...(previous ? { previous } : {}), durationMs: Date.now() - started }
  } catch (err) {
    if (!(isAcmeError(err) && (err.code === ErrorCodes.ABORTED || (err.code === ErrorCodes.RATE_LIMITED && !err.status)))) {
      const next = recordFailure(state ?? undefined, failureOf(err), new Date())
      await ctx.store.writeState(primary, next).catch((e) => ctx.logger.warn({ err: (e as Error).message }, 'could not store the failure state'))
      throw Object.assign(asError(err), { nextAttemptAt: next.nextAttemptAt ? new Date(next.nextAttemptAt) : null })
    }
    throw err
  } finally {
    await lock.release().catch(() => {})
  }
}

/**
 * Whether a stored certificate's CA is still wanted: one of the configured issuers, or none at
 * all (`imported` by the command line without --directory: served until due, then renewed with
 * the configured CA). A certificate from another CA (staging after a switch to production) is not.
 */
export function issuerAccepted (bundle: CertificateBundle, issuers: Issuer[]): boolean {
  return bundle.issuer.key === 'imported' || issuers.some((i) => i.key === bundle.issuer.key)
}

async function orderWithIssuers (
  ctx: IssuanceContext, names: string[], previous: CertificateBundle | undefined, state: RenewalState | null, signal: AbortSignal, forced: boolean
): Promise<CertificateBundle> {
  const errors: Error[] = []
  for (const issuer of ctx.issuers) {
    try {
      if (ctx.renewal.stagingFallback && (state?.failures ?? 0) > 0 && issuer instanceof AcmeIssuer) {
        await preflight(ctx, issuer, names, signal)
      }
      ctx.onObtaining(names, issuer.key, previous !== undefined, forced)
      return await orderOnce(ctx, issuer, names, previous, signal)
    } catch (err) {
      if (isAcmeError(err, ErrorCodes.ABORTED) || signal.aborted) throw err
      errors.push(asError(err))
      // the last issuer's failure is the one thrown (and logged by the manager): say only that another is tried
      if (errors.length < ctx.issuers.length) {
        ctx.logger.warn({ issuer: issuer.key, names, err: asError(err).message, code: (err as AcmeError).code }, 'certificate order failed with this issuer; trying the next one')
      }
    }
  }
  if (errors.length === 1) throw errors[0]
  const last = errors[errors.length - 1] as AcmeError
  throw new AcmeError(last.code ?? ErrorCodes.CA_PROBLEM, `every issuer failed for ${names.join(', ')}: ${errors.map((e) => e.message).join(' | ')}`, {
    cause: last, retryAfter: last.retryAfter, retryable: last.retryable,
  })
}

/**
 * After a failure, try the CA's staging twin first (CertMagic does this): if the challenge is
 * still broken, the failure costs nothing against production rate limits. When staging itself
 * cannot be used (down, or refusing the account), production is tried anyway: an outage of
 * staging must not stop renewals.
 */
async function preflight (ctx: IssuanceContext, issuer: AcmeIssuer, names: string[], signal: AbortSignal): Promise<void> {
  if (!stagingDirectoryOf(issuer.directoryUrl)) return
  const staging = ctx.stagingOf(issuer)
  if (!staging) return
  ctx.logger.info({ names, staging: staging.directoryUrl }, 'retrying against the staging CA first')
  try {
    await staging.issue({ names, csr: await createCsr(names, await generateKey('ec-p256')), signal })
  } catch (err) {
    if (!stagingUnusable(err)) throw err
    ctx.logger.warn({ names, staging: staging.directoryUrl, err: asError(err).message }, 'the staging CA could not check this setup; going on with production')
  }
}

/** Failures that say nothing about the names' setup (challenges, DNS, identifiers): the staging CA is down or refuses us. */
export function stagingUnusable (err: unknown): boolean {
  if (!isAcmeError(err)) return false
  const { CA_UNREACHABLE, CA_TLS, CA_BAD_RESPONSE, RATE_LIMITED, TIMEOUT, ACCOUNT, TOS_NOT_AGREED, EAB_REQUIRED, CA_PROBLEM } = ErrorCodes
  return [CA_UNREACHABLE, CA_TLS, CA_BAD_RESPONSE, RATE_LIMITED, TIMEOUT, ACCOUNT, TOS_NOT_AGREED, EAB_REQUIRED].includes(err.code as never) ||
    (err.code === CA_PROBLEM && (err.status ?? 0) >= 500)
}

async function orderOnce (ctx: IssuanceContext, issuer: Issuer, names: string[], previous: CertificateBundle | undefined, signal: AbortSignal) {
  const key = ctx.reuseKey && previous ? previous.privateKey : await generateKey(ctx.keyType)
  const privateKey = typeof key === 'string' ? key : pkcs8Pem(key)
  const replaces = previous?.certId && previous.issuer.key === issuer.key ? previous.certId : undefined
  const { certificate } = await issuer.issue({ names, csr: await createCsr(names, key), replaces, signal })
  return makeBundle(names, certificate, privateKey, ctx.reuseKey && previous ? previous.keyType : ctx.keyType, issuer, previous)
}

/** Assembles the stored bundle from what the CA returned. */
export function makeBundle (
  names: string[], certificate: string, privateKey: string, keyType: KeyType, issuer: Issuer, previous?: CertificateBundle
): CertificateBundle {
  const leaf = readLeaf(certificate)
  let certId: string | null = null
  try { certId = certIdOf(certificate) } catch {}
  return {
    version: 1,
    names,
    certificate,
    privateKey,
    keyType,
    issuer: { key: issuer.key, directoryUrl: issuer.directoryUrl, commonName: leaf.issuerCommonName },
    serial: leaf.serial,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    certId,
    obtainedAt: new Date().toISOString(),
    ...(previous?.certId ? { replaced: previous.certId } : {}),
  }
}

/**
 * The stored bundle, read under the issuance lock before an order. An unreadable one is about
 * to be overwritten, so its bytes are kept aside first; if they cannot be read back at all
 * (ciphertext under another key, a tampered value), keepUnreadable throws and no order is
 * placed: the value stays for the operator to fix the key or delete it.
 */
async function readForOrder (ctx: IssuanceContext, primary: string): Promise<CertificateBundle | null> {
  try {
    return await ctx.store.read(primary)
  } catch (err) {
    if (!isAcmeError(err, ErrorCodes.STORAGE_CORRUPT)) throw err
    const keptAt = await ctx.store.keepUnreadable(primary)
    ctx.logger.error({ name: primary, code: err.code, err: err.message, keptAt }, 'stored certificate is unusable; its bytes were kept aside and a new one will be ordered')
    return null
  }
}

/** A stored bundle, or null when missing or corrupt (a corrupt one is replaced by a new order). Storage errors propagate. */
export async function readOrNull (ctx: Pick<IssuanceContext, 'store' | 'logger'>, primary: string): Promise<CertificateBundle | null> {
  try {
    return await ctx.store.read(primary)
  } catch (err) {
    if (!isAcmeError(err, ErrorCodes.STORAGE_CORRUPT)) throw err
    ctx.logger.error({ name: primary, code: err.code, err: err.message }, 'stored certificate is unusable; a new one will be ordered')
    return null
  }
}

export function sameNames (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n) => b.includes(n))
}

function failureOf (err: unknown): { code: string, message: string, retryAfter?: Date } {
  const e = asError(err) as Partial<AcmeError>
  return { code: e.code ?? 'UNKNOWN', message: e.message ?? String(err), ...(e.retryAfter ? { retryAfter: e.retryAfter } : {}) }
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
