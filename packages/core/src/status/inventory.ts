import type { CertificateBundle } from '../certificate.js'
import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import { BundleStore } from '../manager/bundle-store.js'
import { normalizeName } from '../names.js'
import { renewalTime, type RenewalOptions, type RenewalReason } from '../renewal/index.js'
import type { Storage } from '../storage/contract.js'
import { decodeKeySegment, StorageKeys } from '../storage/keys.js'

/** A certificate as found in storage (by any instance), with its failure state. No private key. */
export interface StoredCertificate {
  /** the primary name: the storage key of the certificate */
  primary: string
  /** every name in the certificate, primary first */
  names: string[]
  /** 'corrupt' when the stored bytes cannot be read (see `error`) */
  status: 'valid' | 'expired' | 'corrupt'
  issuer?: CertificateBundle['issuer']
  serial?: string
  keyType?: CertificateBundle['keyType']
  notBefore?: Date
  notAfter?: Date
  obtainedAt?: Date
  /** when it is due for renewal and why, under `renewal` options (default policy when not given) */
  renewal?: { at: Date, reason: RenewalReason }
  ari?: CertificateBundle['ari']
  /** consecutive failed attempts since the last success (0 when none) */
  failures: number
  lastError?: { code: string, message: string, at: Date }
  /** when any instance tries again after failures (null: attempts stopped) */
  nextAttemptAt?: Date | null
  /** why the bundle could not be read, for status 'corrupt' */
  error?: { code: string, message: string }
}

/**
 * Reads every certificate in `storage`, with its failure state, for operators (CLI, status
 * pages). Unreadable bundles are reported as 'corrupt' rather than thrown; storage errors
 * throw. `renewal` should match the manager's renewal options (default policy otherwise).
 */
export async function readStoredCertificates (storage: Storage, opts: { renewal?: RenewalOptions, now?: Date } = {}): Promise<StoredCertificate[]> {
  const store = new BundleStore(storage)
  const now = opts.now ?? new Date()
  const primaries = await store.listPrimaries()
  const out: StoredCertificate[] = []
  for (const primary of primaries) {
    const [bundle, state] = await Promise.all([readBundle(store, primary), store.readState(primary)])
    const failure = state
      ? {
          failures: state.failures,
          lastError: { code: state.lastError.code, message: state.lastError.message, at: new Date(state.lastError.at) },
          nextAttemptAt: state.nextAttemptAt === null ? null : new Date(state.nextAttemptAt),
        }
      : { failures: 0 }
    if (bundle === null) continue // a directory holding only a failure state or leftovers
    if (bundle instanceof Error) {
      out.push({ primary, names: [primary], status: 'corrupt', ...failure, error: { code: (bundle as AcmeError).code ?? 'UNKNOWN', message: bundle.message } })
      continue
    }
    const notAfter = new Date(bundle.notAfter)
    out.push({
      primary,
      names: bundle.names,
      status: notAfter <= now ? 'expired' : 'valid',
      issuer: bundle.issuer,
      serial: bundle.serial,
      keyType: bundle.keyType,
      notBefore: new Date(bundle.notBefore),
      notAfter,
      obtainedAt: new Date(bundle.obtainedAt),
      renewal: renewalTime(bundle, opts.renewal),
      ...(bundle.ari ? { ari: bundle.ari } : {}),
      ...failure,
    })
  }
  return out
}

/**
 * The stored bundle (chain and private key) of the certificate that has `name` as its
 * primary name, or else as any of its names; null when none does. Throws
 * ERR_ACME_STORAGE_CORRUPT for an unreadable bundle and ERR_ACME_INVALID_IDENTIFIER for a bad name.
 */
export async function findStoredBundle (storage: Storage, name: string): Promise<CertificateBundle | null> {
  const wanted = normalizeName(name)
  const store = new BundleStore(storage)
  const direct = await store.read(wanted)
  if (direct) return direct
  for (const primary of await store.listPrimaries()) {
    const bundle = await readBundle(store, primary)
    if (bundle && !(bundle instanceof Error) && bundle.names.includes(wanted)) return bundle
  }
  return null
}

/** Emails of the ACME accounts stored for the CA `issuerKey` (undefined for an account without one). */
export async function storedAccountEmails (storage: Storage, issuerKey: string): Promise<Array<string | undefined>> {
  const sample = StorageKeys.account(issuerKey, undefined)
  const prefix = sample.slice(0, sample.lastIndexOf('/') + 1)
  const keys = await storage.list(prefix.slice(0, -1))
  return keys
    .filter((key) => key.startsWith(prefix) && key.endsWith('.json'))
    .map((key) => key.slice(prefix.length, -'.json'.length))
    .map((segment) => segment === 'default' ? undefined : decodeKeySegment(segment))
}

async function readBundle (store: BundleStore, primary: string): Promise<CertificateBundle | Error | null> {
  try {
    return await store.read(primary)
  } catch (err) {
    if (isAcmeError(err, ErrorCodes.STORAGE_CORRUPT)) return err
    throw err
  }
}
