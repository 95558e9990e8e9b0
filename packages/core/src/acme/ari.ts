import { X509Certificate } from 'node:crypto'
import type { RenewalInfo } from '../certificate.js'
import { splitPemChain } from '../certificate.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { children, readElement } from '../der.js'
import { parseRetryAfter } from './client.js'

/** Retry-After we assume when the CA gives none (RFC 9773 suggests a few hours). */
const DEFAULT_ARI_RETRY_MS = 6 * 3600_000

/**
 * RFC 9773 §4.1 certID: base64url(AKI keyIdentifier) "." base64url(serial as DER INTEGER
 * content). Null when the leaf has no Authority Key Identifier (then ARI cannot be used).
 */
export function certIdOf (chainPem: string): string | null {
  const cert = new X509Certificate(splitPemChain(chainPem)[0] ?? '').raw
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serialNumber, ..., [3] extensions } ... }
  const tbs = children(cert, children(cert, readElement(cert, 0))[0]!)
  const serial = tbs.find((el) => el.tag === 0x02)
  const extensions = tbs.find((el) => el.tag === 0xa3)
  if (!serial || !extensions) return null
  for (const ext of children(cert, children(cert, extensions)[0]!)) {
    const [id, ...rest] = children(cert, ext)
    if (!id || !Buffer.from(cert.subarray(id.start, id.end)).equals(AKI_OID)) continue
    const value = rest[rest.length - 1]! // extnValue OCTET STRING (after an optional critical flag)
    const aki = readElement(cert, value.start)
    const keyId = children(cert, aki).find((el) => el.tag === 0x80) // [0] keyIdentifier
    if (!keyId) return null
    return `${cert.subarray(keyId.start, keyId.end).toString('base64url')}.${cert.subarray(serial.start, serial.end).toString('base64url')}`
  }
  return null
}

/** 2.5.29.35 (authorityKeyIdentifier), as the content of its OID element */
const AKI_OID = Buffer.from([0x55, 0x1d, 0x23])

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
