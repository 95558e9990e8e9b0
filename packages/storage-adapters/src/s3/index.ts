import { AcmeError, DEFAULT_LOCK_TTL_MS, ErrorCodes, MAX_LOCK_TTL_MS, assertStorageKey, pollForLock } from '@fastify-acme/core'
import type { LockHandle, LockOptions, Storage, StorageStat } from '@fastify-acme/core'
import {
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { createS3Locks } from './locks.js'
import { isNotFound, isNotImplemented, storageError, withRetries, type RetryPolicy } from './requests.js'

/** Options of s3Storage(). Pass `client`, or the connection settings to build one. */
export interface S3StorageOptions {
  /** bucket name (it must exist) */
  bucket: string
  /** key prefix inside the bucket, e.g. 'acme/prod' (no leading or trailing slash; default: none) */
  prefix?: string
  /**
   * Your S3Client. It is used as it is (its checksum and retry settings apply) and never
   * destroyed by close(). Leave it out to let the storage build one from the options below.
   */
  client?: S3Client
  /** S3-compatible endpoint, e.g. 'https://<account>.r2.cloudflarestorage.com' or 'http://127.0.0.1:9000' */
  endpoint?: string
  /** region (default: the SDK's chain, AWS_REGION etc.; 'us-east-1' when `endpoint` is set) */
  region?: string
  /** static credentials (default: the SDK's provider chain: env, profile, SSO, instance role) */
  credentials?: S3ClientConfig['credentials']
  /** path-style URLs (http://host/bucket/key), needed by most S3-compatible servers (default false) */
  forcePathStyle?: boolean
  /** any other S3Client settings, applied last */
  clientConfig?: S3ClientConfig
  /** lease of a lock when lock() is called without `ttlMs`, in ms (default 30 000) */
  lockTtlMs?: number
  /** how often a waiting lock() tries again, in ms (default 500); S3 has no change feed to wake waiters */
  pollMs?: number
  /**
   * Lock even on a server whose probe shows that it ignores conditional writes (then locks are
   * not exclusive; a warning is logged). Default false: lock() rejects with ERR_ACME_STORAGE.
   */
  unsafeLocking?: boolean
  /** retries after a 5xx, SlowDown or network failure, with exponential backoff (default 4) */
  retries?: number
  /** first retry delay in ms, doubling each time up to 2 s (default 100) */
  retryBaseMs?: number
  /** how long one request may take, in ms (default 10 000) */
  requestTimeoutMs?: number
  /** objects per ListObjectsV2 page, 1 to 1000 (default 1000) */
  pageSize?: number
  /** receives warnings (default console.warn) */
  logger?: { warn (message: string): void }
}

/** A Storage on an S3 bucket, with close() and the lock probe. */
export interface S3Storage extends Storage {
  /**
   * Checks that the server honours conditional writes; lock() runs it once by itself before
   * the first lock. Call it at startup to fail fast. Rejects with ERR_ACME_STORAGE when the
   * server ignores them (unless `unsafeLocking`).
   */
  probe (): Promise<{ conditionalDelete: boolean }>
  close (): Promise<void>
}

const LOCK_DIR = '.locks'

/**
 * Storage on S3 or an S3-compatible server. Values are plain objects (PutObject is atomic:
 * readers see the old or the new value); locks use conditional writes (If-None-Match /
 * If-Match) judged by the server's clock.
 */
export function s3Storage (opts: S3StorageOptions): S3Storage {
  const Bucket = opts?.bucket
  if (typeof Bucket !== 'string' || !/^[a-zA-Z0-9.\-_]{1,255}$/.test(Bucket)) invalid('bucket', Bucket, 'a bucket name')
  const prefix = opts.prefix ?? ''
  if (typeof prefix !== 'string' || (prefix !== '' && !/^[^/](.*[^/])?$/.test(prefix))) invalid('prefix', prefix, 'a key prefix without leading or trailing slash')
  const root = prefix === '' ? '' : `${prefix}/`
  const pageSize = opts.pageSize ?? 1000
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) invalid('pageSize', pageSize, 'an integer from 1 to 1000')
  const policy: RetryPolicy = { retries: count('retries', opts.retries, 4, 0), baseMs: count('retryBaseMs', opts.retryBaseMs, 100, 1) }
  const timeoutMs = count('requestTimeoutMs', opts.requestTimeoutMs, 10_000, 1)
  const lockTtlMs = count('lockTtlMs', opts.lockTtlMs, DEFAULT_LOCK_TTL_MS, 1)
  if (lockTtlMs > MAX_LOCK_TTL_MS) invalid('lockTtlMs', lockTtlMs, `at most ${MAX_LOCK_TTL_MS} ms (~24.8 days; Node's timers cannot count longer)`)
  const pollMs = count('pollMs', opts.pollMs, 500, 1)
  const logger = opts.logger ?? console

  const owned = opts.client === undefined
  const client = opts.client ?? new S3Client({
    region: opts.region ?? (opts.endpoint ? 'us-east-1' : undefined),
    endpoint: opts.endpoint,
    credentials: opts.credentials,
    forcePathStyle: opts.forcePathStyle,
    // SDK 3.729+ sends CRC32 checksums by default, which several S3-compatibles reject (R2, older MinIO)
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // retries are ours (bounded, and aware of which requests are safe to repeat)
    maxAttempts: 1,
    ...opts.clientConfig,
  })
  const where = `${opts.endpoint ?? 'AWS'} bucket "${Bucket}"`
  const locks = createS3Locks({
    client, bucket: Bucket, lockPrefix: `${root}${LOCK_DIR}/`, policy, timeoutMs, unsafeLocking: opts.unsafeLocking === true, warn: (m) => logger.warn(m), where,
  })
  let closed = false

  const request = async <T>(op: string, key: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    if (closed) throw new AcmeError(ErrorCodes.CLOSED, `S3 storage on ${where} is closed`)
    try {
      return await withRetries(policy, () => fn(AbortSignal.timeout(timeoutMs)))
    } catch (err) {
      throw storageError(op, key, err)
    }
  }
  const tryLock = async (name: string, ttlMs: number) => {
    if (closed) throw new AcmeError(ErrorCodes.CLOSED, `S3 storage on ${where} is closed`)
    return locks.tryLock(name, ttlMs)
  }
  const checkKey = (key: string) => {
    assertStorageKey(key)
    if (key === LOCK_DIR || key.startsWith(`${LOCK_DIR}/`)) {
      throw new AcmeError(ErrorCodes.STORAGE_KEY, `storage key "${key}" is reserved for the S3 adapter's lock objects`)
    }
  }

  const listObjects = async (dir: string, recursive: boolean, limit = Infinity): Promise<{ keys: string[], dirs: string[] }> => {
    const Prefix = `${root}${dir}/`
    const keys: string[] = []
    const dirs: string[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await request('ListObjectsV2', dir, (abortSignal) => client.send(new ListObjectsV2Command({
        Bucket, Prefix, ContinuationToken, MaxKeys: Math.min(pageSize, limit), ...(recursive ? {} : { Delimiter: '/' }),
      }), { abortSignal }))
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key.slice(root.length))
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) dirs.push(p.Prefix.slice(root.length, -1))
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
      if (page.IsTruncated && !ContinuationToken) throw new AcmeError(ErrorCodes.STORAGE, `S3 ListObjectsV2 of "${dir}" was truncated without a continuation token`)
    } while (ContinuationToken && keys.length + dirs.length < limit)
    return { keys, dirs }
  }

  const deleteMany = async (keys: string[]) => {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000)
      try {
        const out = await request('DeleteObjects', batch[0]!, (abortSignal) => client.send(new DeleteObjectsCommand({
          Bucket, Delete: { Objects: batch.map((k) => ({ Key: `${root}${k}` })), Quiet: true },
        }), { abortSignal }))
        const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey')
        if (failed.length > 0) {
          throw new AcmeError(ErrorCodes.STORAGE, `S3 DeleteObjects failed for ${failed.length} keys, e.g. "${failed[0]!.Key}": ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`, { retryable: true })
        }
      } catch (err) {
        if (!isNotImplemented((err as AcmeError).cause)) throw err
        // servers without the batch API: one request per key
        for (const k of batch) await request('DeleteObject', k, (abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key: `${root}${k}` }), { abortSignal }))
      }
    }
  }

  return {
    async get (key) {
      checkKey(key)
      try {
        return await request('GetObject', key, async (abortSignal) => {
          const out = await client.send(new GetObjectCommand({ Bucket, Key: `${root}${key}` }), { abortSignal })
          return await out.Body!.transformToByteArray()
        })
      } catch (err) {
        if (isNotFound((err as AcmeError).cause)) return null
        throw err
      }
    },

    async put (key, value) {
      checkKey(key)
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) invalid('value', value, 'a Uint8Array or a string')
      const Body = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      await request('PutObject', key, (abortSignal) => client.send(new PutObjectCommand({
        Bucket, Key: `${root}${key}`, Body, ContentLength: Body.length, ContentType: 'application/octet-stream',
      }), { abortSignal }))
    },

    async delete (key) {
      checkKey(key)
      await request('DeleteObject', key, (abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key: `${root}${key}` }), { abortSignal }))
      await deleteMany((await listObjects(key, true)).keys)
    },

    async list (dir, listOpts = {}) {
      checkKey(dir)
      const { keys, dirs } = await listObjects(dir, listOpts.recursive === true)
      return [...keys, ...dirs].sort()
    },

    async stat (key): Promise<StorageStat | null> {
      checkKey(key)
      try {
        const out = await request('HeadObject', key, (abortSignal) => client.send(new HeadObjectCommand({ Bucket, Key: `${root}${key}` }), { abortSignal }))
        return { size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0), isFile: true }
      } catch (err) {
        if (!isNotFound((err as AcmeError).cause)) throw err
      }
      const under = await listObjects(key, true, 1)
      return under.keys.length > 0 ? { size: 0, modified: new Date(0), isFile: false } : null
    },

    probe: () => locks.probe(),

    tryLock: (name, lockOpts = {}) => tryLock(name, lockOpts.ttlMs ?? lockTtlMs),

    lock (name, lockOpts: LockOptions = {}): Promise<LockHandle> {
      const ttlMs = lockOpts.ttlMs ?? lockTtlMs
      return abortable(name, lockOpts.signal, pollForLock(name, () => tryLock(name, ttlMs), { signal: lockOpts.signal, pollMs }))
    },

    async close () {
      if (closed) return
      await locks.releaseAll()
      closed = true
      if (owned) client.destroy()
    },
  }
}

/**
 * Rejects as soon as `signal` aborts, even while an acquisition attempt (several S3 round trips)
 * is in flight. That attempt still finishes in the background, and pollForLock releases what it
 * got, so no lock is left behind.
 */
function abortable (name: string, signal: AbortSignal | undefined, waiting: Promise<LockHandle>): Promise<LockHandle> {
  if (!signal) return waiting
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new AcmeError(ErrorCodes.ABORTED, `waiting for lock "${name}" was aborted`, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
    waiting.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function count (name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min) invalid(name, value, `an integer >= ${min}`)
  return value
}

/** Names the bad value; objects and functions by their type. */
function invalid (name: string, value: unknown, expected: string): never {
  const shown = typeof value === 'string'
    ? JSON.stringify(value.slice(0, 100))
    : value === null || (typeof value !== 'object' && typeof value !== 'function') ? String(value) : typeof value
  throw new AcmeError(ErrorCodes.INVALID_OPTION, `s3Storage option "${name}" must be ${expected}, got ${shown}`)
}
