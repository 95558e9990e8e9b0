import { AcmeError, ErrorCodes, describe } from '../errors.js'

const SEGMENT_SAFE = /^[a-z0-9_-]$|^\.$/
const KEY = /^[A-Za-z0-9._~@+=-]+(\/[A-Za-z0-9._~@+=-]+)*$/

/**
 * Encodes any string as one key segment, injectively: `[a-z0-9_-]` and inner dots stay, every
 * other byte (upper case, `*`, `/`, `~`, non-ASCII, a leading dot) becomes `~xx`. So
 * `*.example.com` is `~2a.example.com`, and `..` or `a/b` can neither escape nor collide.
 */
export function keySegment (value: string): string {
  if (value === '') return '~'
  let out = ''
  const bytes = Buffer.from(value, 'utf8')
  for (let i = 0; i < bytes.length; i++) {
    const ch = String.fromCharCode(bytes[i]!)
    out += SEGMENT_SAFE.test(ch) && !(ch === '.' && i === 0)
      ? ch
      : `~${bytes[i]!.toString(16).padStart(2, '0')}`
  }
  return out
}

/** The inverse of keySegment. */
export function decodeKeySegment (segment: string): string {
  if (segment === '~') return ''
  const bytes: number[] = []
  for (let i = 0; i < segment.length; i++) {
    const hex = segment.slice(i + 1, i + 3)
    if (segment[i] === '~' && /^[0-9a-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(segment.charCodeAt(i))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** Throws ERR_ACME_STORAGE_KEY unless `key` follows the storage contract's key rules. */
export function assertStorageKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length > 1024 || !KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new AcmeError(ErrorCodes.STORAGE_KEY, `invalid storage key ${describe(key)}`)
  }
}

/**
 * The key layout. Core owns it; adapters never build keys. One certificate's chain, key and
 * metadata live in one value (`bundle`) so that it is written atomically.
 */
export const StorageKeys = {
  /** the ACME account (key + URL) of `email` at the CA identified by `issuerKey` */
  account: (issuerKey: string, email: string | undefined) =>
    `accounts/${keySegment(issuerKey)}/${email ? keySegment(email) : 'default'}.json`,
  /** directory of everything stored for the certificate whose first name is `primaryName` */
  certificateDir: (primaryName: string) => `certificates/${keySegment(primaryName)}`,
  /** chain + private key + metadata (names, issuer, validity, ARI state), one atomic value */
  certificateBundle: (primaryName: string) => `certificates/${keySegment(primaryName)}/bundle.json`,
  /** failures and the next attempt time, shared so any instance can pick the job up */
  certificateState: (primaryName: string) => `certificates/${keySegment(primaryName)}/state.json`,
  /** the bytes of an unreadable bundle, kept before an order replaces it (`at`: ms since the epoch) */
  certificateUnreadable: (primaryName: string, at: number) => `certificates/${keySegment(primaryName)}/unreadable-${at}.json`,
  certificatesPrefix: 'certificates',
  /** an HTTP-01 key authorization, by token (tokens are unique and base64url) */
  http01: (token: string) => `challenges/http-01/${keySegment(token)}.json`,
  /** TLS-ALPN-01 challenge data, by identifier */
  tlsAlpn01: (name: string) => `challenges/tls-alpn-01/${keySegment(name)}.json`,
  challengesPrefix: 'challenges',
  /** the embedded local CA's root and intermediate */
  localCa: (which: 'root' | 'intermediate') => `local-ca/${which}.json`,
  /**
   * a scratch key for the storage check run before every order; at the top level, so that on a
   * file system the check does not create and prune a directory (and fsync its parent twice)
   * each time: ~1 ms less CPU per order with fsStorage
   */
  healthCheck: (id: string) => `health-${keySegment(id)}`,
} as const

/** Lock names; passed to Storage.lock(), which maps them to its own keys. */
export const LockNames = {
  issue: (primaryName: string) => `issue/${keySegment(primaryName)}`,
  account: (issuerKey: string, email: string | undefined) => `account/${keySegment(issuerKey)}/${email ? keySegment(email) : 'default'}`,
  localCa: 'local-ca',
} as const

/** A stable storage name for a CA, from its directory URL: `acme-v02.api.letsencrypt.org-directory`. */
export function issuerKeyOf (directoryUrl: string): string {
  const url = new URL(directoryUrl)
  return `${url.host}${url.pathname}`.replace(/[/:]+/g, '-').replace(/-+$/, '').toLowerCase()
}
