import type { RenewalInfo } from '../certificate.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { certificateFields, children, content, extensionsOf, pemBlock, readElement } from '../der.js'
import { parseRetryAfter } from './client.js'

/** Retry-After we assume when the CA gives none (RFC 9773 suggests a few hours). */
const DEFAULT_ARI_RETRY_MS = 6 * 3600_000

/**
 * RFC 9773 §4.1 certID: base64url(AKI keyIdentifier) "." base64url(serial as DER INTEGER
 * content). Null when the leaf has no Authority Key Identifier (then ARI cannot be used).
 */
export function certIdOf (chainPem: string): string | null {
  const cert = pemBlock(chainPem, ['CERTIFICATE']) // the first block: the leaf
  const { serial, extensions } = certificateFields(cert)
  const aki = extensions && extensionsOf(cert, children(cert, extensions)[0]!).find((ext) => ext.oid === '2.5.29.35')
  if (!aki) return null
  // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
  const keyId = children(cert, readElement(cert, aki.value.start)).find((el) => el.tag === 0x80)
  return keyId ? `${content(cert, keyId).toString('base64url')}.${content(cert, serial).toString('base64url')}` : null
}

/** Parses a renewalInfo response body; throws ERR_ACME_CA_BAD_RESPONSE when it is not one. */
export function parseRenewalInfo (body: unknown, retryAfterHeader: string | undefined, now = Date.now()): RenewalInfo {
  const window = (body as { suggestedWindow?: { start?: unknown, end?: unknown } } | null)?.suggestedWindow
  const start = typeof window?.start === 'string' ? new Date(window.start) : undefined
  const end = typeof window?.end === 'string' ? new Date(window.end) : undefined
  if (!start || !end || Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) {
    throw new AcmeError(ErrorCodes.CA_BAD_RESPONSE, `renewalInfo has no valid suggestedWindow: ${JSON.stringify(body)?.slice(0, 200)}`)
  }
  const explanationURL = (body as { explanationURL?: unknown }).explanationURL
  return {
    window: { start, end },
    ...(typeof explanationURL === 'string' ? { explanationURL } : {}),
    retryAfter: parseRetryAfter(retryAfterHeader, now) ?? new Date(now + DEFAULT_ARI_RETRY_MS),
  }
}
