/** Every stable error code thrown by fastify-acme. The troubleshooting docs list each one. */
export const ErrorCodes = {
  /** An option has the wrong type or value; the message names it. */
  INVALID_OPTION: 'ERR_ACME_INVALID_OPTION',
  /** A domain name or IP address cannot be put in a certificate. */
  INVALID_IDENTIFIER: 'ERR_ACME_INVALID_IDENTIFIER',
  /** The CA's HTTPS certificate is not trusted (wrong or missing caBundle). Not retried. */
  CA_TLS: 'ERR_ACME_CA_TLS',
  /** The CA could not be reached (refused, reset, timeout) after the allowed retries. */
  CA_UNREACHABLE: 'ERR_ACME_CA_UNREACHABLE',
  /** The CA answered with something that is not ACME (garbage JSON, wrong content type). */
  CA_BAD_RESPONSE: 'ERR_ACME_CA_BAD_RESPONSE',
  /** The CA answered with an RFC 8555 problem document; `problemType` says which. */
  CA_PROBLEM: 'ERR_ACME_CA_PROBLEM',
  /** The CA (or our client-side limiter) says to slow down; `retryAfter` says until when. */
  RATE_LIMITED: 'ERR_ACME_RATE_LIMITED',
  /** The CA could not validate a challenge; the message carries its reason. */
  CHALLENGE_FAILED: 'ERR_ACME_CHALLENGE_FAILED',
  /** No enabled challenge type can prove this identifier (e.g. a wildcard without DNS-01). */
  NO_CHALLENGE: 'ERR_ACME_NO_CHALLENGE',
  /** An order, authorization or finalization did not complete in time. */
  TIMEOUT: 'ERR_ACME_TIMEOUT',
  /** The operation was aborted through its AbortSignal or by close(). */
  ABORTED: 'ERR_ACME_ABORTED',
  /** The account could not be created or loaded. */
  ACCOUNT: 'ERR_ACME_ACCOUNT',
  /** Terms of service must be agreed to before an account is created. */
  TOS_NOT_AGREED: 'ERR_ACME_TOS_NOT_AGREED',
  /** The CA requires External Account Binding and none (or a bad one) was given. */
  EAB_REQUIRED: 'ERR_ACME_EAB_REQUIRED',
  /** Storage failed a read, write, delete or the pre-order check. No order is placed. */
  STORAGE: 'ERR_ACME_STORAGE',
  /** A storage key is malformed (adapters refuse it rather than escape their namespace). */
  STORAGE_KEY: 'ERR_ACME_STORAGE_KEY',
  /** Stored bytes are unreadable: truncated PEM, corrupt JSON, key/cert mismatch, bad ciphertext. */
  STORAGE_CORRUPT: 'ERR_ACME_STORAGE_CORRUPT',
  /** A lock was lost (its lease expired or was taken over) while work was in progress. */
  LOCK_LOST: 'ERR_ACME_LOCK_LOST',
  /** The name is not managed by this manager (and on-demand did not allow it). */
  NOT_MANAGED: 'ERR_ACME_NOT_MANAGED',
  /** The manager was closed. */
  CLOSED: 'ERR_ACME_CLOSED',
  /** A challenge request (HTTP-01 token, TLS-ALPN-01 name) was malformed or unknown. */
  BAD_CHALLENGE_REQUEST: 'ERR_ACME_BAD_CHALLENGE_REQUEST',
  /** A DNS-01 provider failed to present or clean up a record, or propagation timed out. */
  DNS_PROVIDER: 'ERR_ACME_DNS_PROVIDER',
  /** The plugin was registered twice on one Fastify instance. */
  ALREADY_REGISTERED: 'ERR_ACME_ALREADY_REGISTERED',
} as const

export type ErrorCode = typeof ErrorCodes[keyof typeof ErrorCodes]

export interface AcmeErrorDetails {
  cause?: unknown
  /** for CA_PROBLEM / RATE_LIMITED: the RFC 8555 problem type, e.g. urn:ietf:params:acme:error:rateLimited */
  problemType?: string
  /** HTTP status of the CA response, when there was one */
  status?: number
  /** when the CA said to retry (from Retry-After), or when the next attempt is planned */
  retryAfter?: Date
  /** whether trying again later may succeed */
  retryable?: boolean
}

/** The one error class of fastify-acme: a stable `code`, a human message, and the `cause`. */
export class AcmeError extends Error {
  override name = 'AcmeError'
  readonly code: ErrorCode
  readonly problemType?: string
  readonly status?: number
  readonly retryAfter?: Date
  readonly retryable: boolean

  constructor (code: ErrorCode, message: string, details: AcmeErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = code
    this.problemType = details.problemType
    this.status = details.status
    this.retryAfter = details.retryAfter
    this.retryable = details.retryable ?? false
  }
}

export function isAcmeError (err: unknown, code?: ErrorCode): err is AcmeError {
  return err instanceof AcmeError && (code === undefined || err.code === code)
}

/** Throws ERR_ACME_INVALID_OPTION naming the option and the bad value. */
export function invalidOption (option: string, value: unknown, expected: string): never {
  throw new AcmeError(ErrorCodes.INVALID_OPTION, `option "${option}" must be ${expected}, got ${describe(value)}`)
}

/** A short, log-safe rendering of a bad value for error messages. */
export function describe (value: unknown): string {
  if (typeof value === 'string' && /PRIVATE KEY/.test(value)) return '(private key material, not shown)'
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value)
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) return `an array of ${value.length}`
  return `a ${typeof value === 'object' ? value.constructor?.name ?? 'object' : typeof value}`
}

/**
 * Hides the credentials of `scheme://user:password@host...` for messages and logs: everything
 * up to the last `@` counts as credentials, since passwords may hold `/`, `@` or `:` unencoded
 * (base64 secrets). The user name stays when it is plainly one; masking too much is harmless.
 */
export function maskUrl (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)(.*)@/is, (_all, scheme: string, info: string) => {
    const user = /^[^:/?#@]*/.exec(info)![0]
    return `${scheme}${info[user.length] === ':' ? `${user}:***` : '***'}@`
  })
}
