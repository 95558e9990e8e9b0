import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { AcmeError, ErrorCodes, MAX_LOCK_TTL_MS, closingGate, createLockHandle, keySegment } from '@fastify-acme/core'
import type { LockHandle } from '@fastify-acme/core'
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { runProbe, type ProbeResult, type PutOutcome } from './probe.js'
import {
  isAmbiguous, isConflict, isNotFound, isNotImplemented, isPreconditionFailed, recordServerDate, s3Failure,
  storageError, withRetries, type RetryPolicy,
} from './requests.js'

/*
 * Locks on S3 with conditional writes (research/storage.md §6.4). A lock is one object,
 * `<prefix>/.locks/<name>.json`, whose body is unique per write (token + sequence number), so
 * every write gets a distinct ETag and "If-Match: <my ETag>" means "only if nobody wrote since".
 *
 * - acquire: PUT If-None-Match: * ; if it exists, take it over with PUT If-Match: <its ETag>
 *   only when released (tombstone) or stale by the server's own clock: response Date minus
 *   LastModified >= ttl + 1 s (both in whole seconds, hence the extra second). Local clocks are
 *   never compared with the server's, so a skewed client cannot take over early.
 * - renew: PUT If-Match: <my ETag>; 412/404 means someone else owns it now.
 * - release: DELETE If-Match: <my ETag>, or a tombstone PUT If-Match where conditional deletes
 *   are not implemented. Never an unconditional delete: that could remove a new owner's lock.
 * - a request that got no answer may or may not have been applied: read the object back and
 *   look for our token before deciding.
 * - the fence is a counter object beside the lock, bumped with a conditional write after the
 *   acquisition and followed by a renewal that proves we still held the lock afterwards, so a
 *   holder that lost its lock before its fence was counted never hands that fence out.
 */

export interface S3LockContext {
  client: S3Client
  bucket: string
  /** `<prefix>/.locks/` */
  lockPrefix: string
  policy: RetryPolicy
  timeoutMs: number
  unsafeLocking: boolean
  warn: (message: string) => void
  /** names the server in error messages */
  where: string
}

export interface S3Locks {
  tryLock (name: string, ttlMs: number): Promise<LockHandle | null>
  probe (): Promise<{ conditionalDelete: boolean }>
  releaseAll (): Promise<void>
}

interface LockBody { token: string, seq: number, ttlMs: number, fence?: number, owner?: string, released?: boolean }
interface LockObject { etag: string, body: LockBody | undefined, stale: boolean }

const owner = `${hostname()}:${process.pid}`
const pause = () => new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80))

export function createS3Locks (ctx: S3LockContext): S3Locks {
  const { client, bucket: Bucket, lockPrefix, timeoutMs } = ctx
  const held = new Map<string, LockHandle>()
  let probing: Promise<ProbeResult> | undefined
  let conditionalDelete = true

  // A completed probe (passed or refused) is remembered; one that failed half-way is run again next time.
  const probe = async () => {
    probing ??= runProbe(ctx, (key, body, cond, report) => conditionalPut(key, body, cond, timeoutMs, report)).then((r) => {
      conditionalDelete = r.conditionalDelete
      return r
    }, (err: unknown) => {
      probing = undefined
      throw err
    })
    const result = await probing
    if (result.refusal) throw result.refusal
    return { conditionalDelete: result.conditionalDelete }
  }

  /** `report` receives the error behind an 'ambiguous' outcome, for messages that must say why. */
  async function conditionalPut (
    Key: string, body: object, cond: { IfNoneMatch: string } | { IfMatch: string }, ms = timeoutMs, report?: (err: unknown) => void
  ): Promise<PutOutcome> {
    const Body = Buffer.from(JSON.stringify(body))
    try {
      const out = await client.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: Body.length, ContentType: 'application/json', ...cond }),
        { abortSignal: AbortSignal.timeout(ms) })
      return out.ETag ? { etag: out.ETag } : 'ambiguous'
    } catch (err) {
      if (isPreconditionFailed(err) || isNotFound(err)) return 'precondition'
      if (isConflict(err)) return 'conflict'
      if (isNotImplemented(err)) throw storageError('PutObject', Key, err)
      // no answer (network, timeout, abort), or a 5xx that may have come after the write was
      // applied; anything else (credentials, configuration, a 4xx) is no doubt about the write
      if (isAmbiguous(err) || (s3Failure(err).status ?? 0) >= 500) {
        report?.(err)
        return 'ambiguous'
      }
      throw storageError('PutObject', Key, err)
    }
  }

  async function readLock (Key: string, ms = timeoutMs): Promise<LockObject | null> {
    try {
      return await withRetries(ctx.policy, async () => {
        const command = new GetObjectCommand({ Bucket, Key })
        const serverDate = recordServerDate(command)
        const out = await client.send(command, { abortSignal: AbortSignal.timeout(ms) })
        const text = await out.Body!.transformToString()
        let body: LockBody | undefined
        try { body = JSON.parse(text) as LockBody } catch {}
        const now = serverDate()
        const ttl = typeof body?.ttlMs === 'number' ? body.ttlMs : 0
        const stale = now !== undefined && out.LastModified !== undefined &&
          now.getTime() - out.LastModified.getTime() >= Math.ceil((ttl + 1000) / 1000) * 1000
        return { etag: out.ETag!, body, stale }
      })
    } catch (err) {
      if (isNotFound(err)) return null
      throw storageError('GetObject', Key, err)
    }
  }

  async function bumpFence (name: string, Key: string, token: string): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await readLock(Key)
      const fence = (typeof current?.body?.fence === 'number' ? current.body.fence : 0) + 1
      const outcome = await conditionalPut(Key, { fence, token }, current ? { IfMatch: current.etag } : { IfNoneMatch: '*' })
      if (typeof outcome === 'object') return fence
      if (outcome === 'ambiguous') {
        const after = await readLock(Key)
        if (after?.body?.token === token && after.body.fence === fence) return fence
      }
      await pause()
    }
    throw new AcmeError(ErrorCodes.STORAGE, `S3 lock "${name}": could not count its fence (kept conflicting)`, { retryable: true })
  }

  async function acquire (name: string, ttlMs: number): Promise<LockHandle | null> {
    if (typeof name !== 'string' || name === '' || name.length > 300) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `lock name must be a string of 1 to 300 characters, got ${typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : typeof name}`)
    }
    if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_LOCK_TTL_MS) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `lock option "ttlMs" must be an integer from 1 to ${MAX_LOCK_TTL_MS} (ms, ~24.8 days), got ${String(ttlMs)}`)
    }
    await probe()
    const Key = `${lockPrefix}${keySegment(name)}.json`
    const token = randomUUID()
    const fresh = { token, seq: 0, ttlMs, owner }
    for (let round = 0; round < 5; round++) {
      let outcome = await conditionalPut(Key, fresh, { IfNoneMatch: '*' })
      if (outcome === 'conflict') { await pause(); continue }
      if (typeof outcome === 'object') return hold(name, Key, token, outcome.etag, ttlMs)
      const current = await readLock(Key)
      if (current === null) continue
      if (current.body?.token === token && !current.body.released) return hold(name, Key, token, current.etag, ttlMs)
      if (!current.body?.released && !current.stale) return null
      outcome = await conditionalPut(Key, fresh, { IfMatch: current.etag })
      if (outcome === 'conflict') { await pause(); continue }
      if (typeof outcome === 'object') return hold(name, Key, token, outcome.etag, ttlMs)
      if (outcome === 'precondition') return null
      const after = await readLock(Key)
      return after?.body?.token === token ? hold(name, Key, token, after.etag, ttlMs) : null
    }
    return null
  }

  async function hold (name: string, Key: string, token: string, etag: string, ttlMs: number): Promise<LockHandle | null> {
    const state = { etag, seq: 0, fence: 0 }
    const renew = async (ms: number): Promise<boolean> => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const seq = ++state.seq
        const outcome = await conditionalPut(Key, { token, seq, ttlMs, fence: state.fence, owner }, { IfMatch: state.etag }, ms)
        if (typeof outcome === 'object') { state.etag = outcome.etag; return true }
        if (outcome === 'conflict') { await pause(); continue }
        const current = await readLock(Key, ms)
        if (current?.body?.token !== token || current.body.released) return false
        // still ours: either this very write landed and its answer was lost, or we hold an
        // older ETag of our own object (an earlier ambiguous write); adopt it
        state.etag = current.etag
        if (current.body.seq === seq) return true
      }
      throw new AcmeError(ErrorCodes.STORAGE, `S3 lock "${name}": renewal kept conflicting`, { retryable: true })
    }
    const release = async (): Promise<void> => {
      for (let attempt = 0; attempt < 3; attempt++) {
        if (conditionalDelete) {
          try {
            await withRetries(ctx.policy, () => client.send(new DeleteObjectCommand({ Bucket, Key, IfMatch: state.etag }), { abortSignal: AbortSignal.timeout(timeoutMs) }))
            return
          } catch (err) {
            if (isNotFound(err)) return
            if (isNotImplemented(err)) conditionalDelete = false
            else if (!isPreconditionFailed(err) && !isAmbiguous(err) && !isRetryable5xx(err)) throw storageError('DeleteObject', Key, err)
          }
        }
        if (!conditionalDelete) {
          const outcome = await conditionalPut(Key, { token, seq: ++state.seq, ttlMs, fence: state.fence, owner, released: true }, { IfMatch: state.etag })
          if (outcome === 'precondition' || typeof outcome === 'object') return
          if (outcome === 'conflict') { await pause(); continue }
        }
        const current = await readLock(Key)
        if (current?.body?.token !== token || current.body.released) return
        state.etag = current.etag
      }
      throw new AcmeError(ErrorCodes.STORAGE, `S3 lock "${name}": release kept failing; it frees itself ${ttlMs} ms after the last renewal`, { retryable: true })
    }

    // the server's lease runs from this renewal's write (its LastModified), which lands after it starts
    let leaseStartedAt = Date.now()
    try {
      state.fence = await bumpFence(name, Key.replace(/\.json$/, '.fence'), token)
      leaseStartedAt = Date.now()
      if (!await renew(timeoutMs)) return null
    } catch (err) {
      await release().catch(() => {})
      throw err
    }
    // renewals must give up well within the lease: the handle notices failures only when one returns
    const renewMs = Math.min(timeoutMs, Math.max(100, Math.floor(ttlMs / 3)))
    const handle = createLockHandle({
      name,
      token,
      fence: state.fence,
      ttlMs,
      leaseStartedAt,
      backend: {
        renew: () => renew(renewMs),
        release: async () => { held.delete(token); await release() },
      },
    })
    held.set(token, handle)
    handle.lost.addEventListener('abort', () => held.delete(token), { once: true })
    return handle
  }

  const gate = closingGate()
  return {
    tryLock: (name: string, ttlMs: number) => gate.run(name, () => acquire(name, ttlMs)),
    probe,
    async releaseAll () {
      await gate.close()
      await Promise.allSettled([...held.values()].map((handle) => handle.release()))
    },
  }
}

const isRetryable5xx = (err: unknown) => (s3Failure(err).status ?? 0) >= 500
