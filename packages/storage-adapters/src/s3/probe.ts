import { randomUUID } from 'node:crypto'
import { AcmeError, ErrorCodes } from '@fastify-acme/core'
import { DeleteObjectCommand } from '@aws-sdk/client-s3'
import type { S3LockContext } from './locks.js'
import { isNotFound, isNotImplemented, isPreconditionFailed, isRetryable, s3Failure } from './requests.js'

/** What a completed probe found: `refusal` is set when locking must be refused. */
export interface ProbeResult { conditionalDelete: boolean, refusal?: AcmeError }

/** How a conditional PUT ended: the new ETag, 412/404, 409, or no usable answer. */
export type PutOutcome = { etag: string } | 'precondition' | 'conflict' | 'ambiguous'
type Condition = { IfNoneMatch: string } | { IfMatch: string }
/** `report` receives the error behind an 'ambiguous' outcome. */
type ConditionalPut = (key: string, body: object, cond: Condition, report?: (err: unknown) => void) => Promise<PutOutcome>

/**
 * Checks, on a scratch object under the lock prefix, that the server honours conditional
 * writes; locks on a server that ignores them (s3rver, old MinIO, some gateways) would let every
 * instance "acquire" at once. Also finds out whether DeleteObject honours If-Match; where it
 * does not, releases write a tombstone instead. A server that ignores conditional writes gets a
 * `refusal` (ERR_ACME_STORAGE, retryable: false) unless `unsafeLocking` is set, in which case it
 * only warns. Throws when the probe could not complete (network, permissions): try again later.
 */
export async function runProbe (ctx: S3LockContext, conditionalPut: ConditionalPut): Promise<ProbeResult> {
  const Key = `${ctx.lockPrefix}.probe-${randomUUID()}`
  const body = (step: number) => ({ probe: step, nonce: randomUUID() })
  // the last error behind an 'ambiguous' answer: without it, "ambiguous" says nothing about what to fix
  let lastError: unknown
  const report = (err: unknown) => { lastError = err }
  const transient = (what: string, err = lastError) => {
    const why = err === undefined ? '' : `: ${s3Failure(err).code}: ${s3Failure(err).message}`
    return new AcmeError(ErrorCodes.STORAGE, `S3 lock probe on ${ctx.where}: ${what}${why}`, {
      cause: err,
      retryable: err === undefined || isRetryable(err),
    })
  }

  let created: PutOutcome
  try {
    created = await conditionalPut(Key, body(1), { IfNoneMatch: '*' }, report)
  } catch (err) {
    // a server that rejects the header itself (501 NotImplemented, 400) has no conditional writes
    if (!isNotImplemented((err as AcmeError).cause)) throw err
    return { conditionalDelete: false, refusal: refuse(ctx, [`it rejected If-None-Match: * (${(err as Error).message})`]) }
  }
  if (typeof created !== 'object') throw transient(`could not create ${Key} (${created})`)
  let etag = created.etag
  const problems: string[] = []
  lastError = undefined
  const second = await conditionalPut(Key, body(2), { IfNoneMatch: '*' }, report)
  if (typeof second === 'object') {
    problems.push('it ignored If-None-Match: * (a second create-only PUT of one key succeeded)')
    etag = second.etag
  } else if (second !== 'precondition') throw transient(`create-only PUT of an existing key answered ${second}`)
  lastError = undefined
  const third = await conditionalPut(Key, body(3), { IfMatch: '"00000000000000000000000000000000"' }, report)
  if (typeof third === 'object') {
    problems.push('it ignored If-Match (a PUT with a wrong ETag succeeded)')
    etag = third.etag
  } else if (third !== 'precondition') throw transient(`PUT with a wrong ETag answered ${third}`)

  let conditionalDelete = true
  let gone = false
  try {
    await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key, IfMatch: '"00000000000000000000000000000000"' }))
    // the delete with a wrong ETag went through: If-Match on DELETE is ignored here
    conditionalDelete = false
    gone = true
  } catch (err) {
    if (isNotImplemented(err)) conditionalDelete = false
    else if (!isPreconditionFailed(err) && !isNotFound(err)) throw transient('conditional DELETE failed', err)
  }
  if (!gone) {
    // the scratch object is ours alone (random name), so a plain delete is safe here
    await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key, ...(conditionalDelete ? { IfMatch: etag } : {}) })).catch(() => {})
  }

  return { conditionalDelete, refusal: problems.length > 0 ? refuse(ctx, problems) : undefined }
}

/** The refusal, or undefined (after a warning) when the user accepted the risk with unsafeLocking. */
function refuse (ctx: S3LockContext, problems: string[]): AcmeError | undefined {
  const message = `S3 server ${ctx.where} does not honour conditional writes: ${problems.join('; ')}. ` +
    'Locks would not be exclusive, so several instances could order the same certificate. Use a server with ' +
    'conditional writes (AWS S3, Cloudflare R2, MinIO, Ceph RGW), or set unsafeLocking: true if you accept the risk ' +
    '(e.g. a single instance).'
  if (!ctx.unsafeLocking) return new AcmeError(ErrorCodes.STORAGE, message, { retryable: false })
  ctx.warn(`${message} Continuing because unsafeLocking is true.`)
  return undefined
}
