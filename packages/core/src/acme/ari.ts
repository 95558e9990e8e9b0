import type { RenewalInfo } from '../certificate.js'
import { splitPemChain } from '../certificate.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { loadX509 } from '../x509.js'
import { parseRetryAfter } from './client.js'

/** Retry-After we assume when the CA gives none (RFC 9773 suggests a few hours). */
const DEFAULT_ARI_RETRY_MS = 6 * 3600_000

/**
 * RFC 9773 §4.1 certID: base64url(AKI keyIdentifier) "." base64url(serial as DER INTEGER
 * content). Null when the leaf has no Authority Key Identifier (then ARI cannot be used).
 */
export function certIdOf (chainPem: string): string | null {
  const x509 = loadX509()
  const leaf = new x509.X509Certificate(splitPemChain(chainPem)[0] ?? '')
  const keyId = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId
  if (!keyId) return null
  let serial = leaf.serialNumber
  if (serial.length % 2 === 1) serial = `0${serial}`
  // a DER INTEGER is signed: a leading byte >= 0x80 needs a 0x00 before it
  if (Number.parseInt(serial.slice(0, 2), 16) >= 0x80) serial = `00${serial}`
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${Buffer.from(serial, 'hex').toString('base64url')}`
}

/** Parses a renewalInfo response body; throws ERR_ACME_CA_BAD_RESPONSE when it is not one. */
export function parseRenewalInfo (body: unknown, retryAfterHeader: string | undefined, now = Date.now()): RenewalInfo {
  const window = (body as { suggestedWindow?: { start?: unknown, end?: unknown } } | null)?.suggestedWindow
  const start = typeof window?.start === 'string' ? new Date(window.start) : undefined
  const end = typeof window?.end === 'string' ? new Date(window.end) : undefined
  if (!start || !end || Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
    throw new AcmeError(ErrorCodes.CA_BAD_RESPONSE, `renewalInfo has no valid suggestedWindow: ${JSON.stringify(body)?.slice(0, 200)}`)
  }
  const explanationURL = (body as { explanationURL?: unknown }).explanationURL
  return {
    window: { start, end },
    ...(typeof explanationURL === 'string' ? { explanationURL } : {}),
    retryAfter: parseRetryAfter(retryAfterHeader, now) ?? new Date(now + DEFAULT_ARI_RETRY_MS),
  }
}
