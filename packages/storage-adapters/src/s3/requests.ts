import { AcmeError, ErrorCodes } from '@fastify-acme/core'
import type { GetObjectCommand } from '@aws-sdk/client-s3'

/** What an SDK error says, in the terms the adapter decides on. */
export interface S3Failure {
  /** HTTP status; undefined when no response arrived (reset, timeout, abort) */
  status?: number
  /** S3 error code, e.g. NoSuchKey, PreconditionFailed, SlowDown; the error name otherwise */
  code: string
  message: string
}

export function s3Failure (err: unknown): S3Failure {
  const e = err as { name?: string, message?: string, $metadata?: { httpStatusCode?: number }, Code?: string }
  return {
    status: e?.$metadata?.httpStatusCode,
    code: e?.Code ?? e?.name ?? 'Error',
    message: e?.message || String(err),
  }
}

/** 404 for the object (not for the bucket: NoSuchBucket is a configuration error). */
export const isNotFound = (err: unknown) => {
  const f = s3Failure(err)
  return f.code !== 'NoSuchBucket' && (f.status === 404 || f.code === 'NoSuchKey' || f.code === 'NotFound')
}

/** The server does not implement a request feature (conditional DeleteObject on many S3-compatibles). */
export const isNotImplemented = (err: unknown) => {
  const f = s3Failure(err)
  return f.status === 501 || f.code === 'NotImplemented' ||
    (f.status === 400 && ['InvalidArgument', 'InvalidRequest', 'BadRequest'].includes(f.code))
}

/** 412, or 404 for If-Match on a missing key (AWS answers 404, Ceph 412): "not ours / not there". */
export const isPreconditionFailed = (err: unknown) => {
  const f = s3Failure(err)
  return f.status === 412 || f.code === 'PreconditionFailed'
}

/** 409 ConditionalRequestConflict: a concurrent conditional write on the same key; try again. */
export const isConflict = (err: unknown) => {
  const f = s3Failure(err)
  return f.status === 409 || f.code === 'ConditionalRequestConflict'
}

// Node's socket and DNS errors, and the SDK's timeouts and aborts (ours: requestTimeoutMs)
const TRANSPORT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ENOTCONN', 'EPROTO', 'ESOCKETTIMEDOUT', 'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const TRANSPORT_NAMES = new Set(['AbortError', 'TimeoutError', 'RequestTimeout', 'RequestTimeoutException'])

/**
 * The request failed on the way (reset, refused, timed out, aborted), without an HTTP answer.
 * Not any error without a status: a missing credential or an SDK bug fails the same way but
 * is no network trouble, and must surface as it is instead of being retried or read back.
 */
export function isTransportError (err: unknown, depth = 0): boolean {
  const e = err as { name?: string, code?: string, cause?: unknown } | undefined
  if (e == null || typeof e !== 'object') return false
  if (TRANSPORT_NAMES.has(e.name ?? '') || TRANSPORT_CODES.has(e.code ?? '')) return true
  return depth < 3 && e.cause !== undefined && isTransportError(e.cause, depth + 1)
}

/** No HTTP answer because the request failed on the way: it may or may not have been applied. */
export const isAmbiguous = (err: unknown) => s3Failure(err).status === undefined && isTransportError(err)

const RETRYABLE_CODES = new Set(['SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeTooSkewed', 'ThrottlingException', 'Throttling', 'TooManyRequests'])

export function isRetryable (err: unknown): boolean {
  const f = s3Failure(err)
  if (f.status === 501 || f.code === 'NotImplemented') return false
  if (f.status === undefined) return isTransportError(err)
  return f.status >= 500 || f.status === 429 || RETRYABLE_CODES.has(f.code)
}

export interface RetryPolicy {
  /** retries after the first attempt */
  retries: number
  /** first backoff in ms; doubles each retry, with jitter, capped at 2 s (or at the server's Retry-After, up to 5 s) */
  baseMs: number
}

/** Runs `attempt` again after 5xx, SlowDown and network failures, with exponential backoff; rethrows anything else. */
export async function withRetries<T> (policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt()
    } catch (err) {
      if (n >= policy.retries || !isRetryable(err)) throw err
      const retryAfter = Number((err as { $response?: { headers?: Record<string, string> } }).$response?.headers?.['retry-after'])
      const backoff = Math.min(2000, policy.baseMs * 2 ** n) * (0.5 + Math.random() / 2)
      await new Promise((resolve) => setTimeout(resolve, retryAfter > 0 ? Math.min(5000, retryAfter * 1000) : backoff))
    }
  }
}

/** The error the adapter throws: ERR_ACME_STORAGE naming the operation and the key, with the SDK error as cause. */
export function storageError (op: string, key: string, err: unknown): AcmeError {
  if (err instanceof AcmeError) return err
  const f = s3Failure(err)
  const status = f.status === undefined ? 'no response' : String(f.status)
  return new AcmeError(ErrorCodes.STORAGE, `S3 ${op} of "${key}" failed (${status} ${f.code}): ${f.message}`, {
    cause: err,
    status: f.status,
    retryable: isRetryable(err),
  })
}

/**
 * Adds a step to one command that records the response's `Date` header: the S3 server's clock,
 * which decides lock staleness (with LastModified, also the server's clock) so that no local
 * clock is ever compared with a remote one.
 */
export function recordServerDate (command: GetObjectCommand): () => Date | undefined {
  let date: Date | undefined
  command.middlewareStack.add((next) => async (args) => {
    const out = await next(args)
    const header = (out.response as { headers?: Record<string, string> } | undefined)?.headers?.date
    if (header) date = new Date(header)
    return out
  }, { step: 'deserialize', name: 'fastifyAcmeServerDate' })
  return () => date
}
