import { existsSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AcmeError, ErrorCodes, maskUrl } from '@fastify-acme/core'
import type { Storage } from '@fastify-acme/core'
import type { FsStorageOptions } from './fs/index.js'
import type { RedisStorageOptions } from './redis/index.js'
import type { S3StorageOptions } from './s3/index.js'

export type { Storage }

/** Options of storageFromUrl(): anything a URL cannot say, per adapter. */
export interface StorageFromUrlOptions {
  /** base of relative `file:` URLs (default: the working directory) */
  cwd?: string
  /**
   * `file:` only: refuse a directory that does not exist (ERR_ACME_STORAGE) instead of creating
   * it, for tools that only read, where a mistyped path would otherwise look like an empty storage
   */
  mustExist?: boolean
  /** extra fsStorage() options; the URL's own settings win */
  fs?: Partial<FsStorageOptions>
  /** extra redisStorage() options (e.g. clientOptions for TLS certificates, logger); the URL's own settings win */
  redis?: Partial<RedisStorageOptions>
  /** extra s3Storage() options (e.g. credentials, logger); the URL's own settings win */
  s3?: Partial<S3StorageOptions>
}

/**
 * Builds a storage from a URL, as in `ACME_STORAGE`:
 *
 * - `file:///var/lib/acme`, or relative `file:./acme-data` / `file:acme-data` (against `cwd`)
 * - `redis://[user:password@]host[:port][/db][?namespace=x]`, `rediss://...` for TLS
 * - `s3://bucket[/prefix][?region=..&endpoint=..&forcePathStyle=true]`, credentials from the
 *   AWS SDK's provider chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role)
 *
 * Every scheme also takes `lockTtlMs`; redis also `pollMs` and `commandTimeoutMs`; s3 also
 * `pollMs` and `unsafeLocking`. The adapter is imported only when its scheme is used, so a
 * `file:` user never loads the Redis client or the AWS SDK. An unsupported scheme or a bad
 * parameter throws ERR_ACME_INVALID_OPTION naming it (passwords are masked).
 */
export async function storageFromUrl (url: string, opts: StorageFromUrlOptions = {}): Promise<Storage> {
  if (typeof url !== 'string' || url.trim() === '') bad(url, 'is not a storage URL')
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  switch (scheme) {
    case 'file': return fileStorage(url, opts)
    case 'redis':
    case 'rediss': return redisFromUrl(url, opts)
    case 's3': return s3FromUrl(url, opts)
    default:
      return bad(url, `has an unsupported scheme ${scheme ? `"${scheme}:"` : '(none)'}; use file:, redis:, rediss: or s3:`)
  }
}

async function fileStorage (url: string, opts: StorageFromUrlOptions): Promise<Storage> {
  let dir: string
  let params = new URLSearchParams()
  if (/^file:\/\//i.test(url)) {
    const parsed = parse(url)
    if (parsed.host !== '' && parsed.host !== 'localhost') bad(url, 'names a remote host; use file:///absolute/path or file:relative/path')
    dir = fileURLToPath(parsed)
    params = parsed.searchParams
  } else {
    const [path = '', query = ''] = url.slice('file:'.length).split('?')
    if (path === '') bad(url, 'has no directory')
    dir = isAbsolute(path) ? path : resolve(opts.cwd ?? process.cwd(), path)
    params = new URLSearchParams(query)
  }
  const settings = readParams(url, params, { lockTtlMs: 'int' })
  if (opts.mustExist && !existsSync(dir)) {
    throw new AcmeError(ErrorCodes.STORAGE, `no storage at ${dir} (${JSON.stringify(url)}): the directory does not exist`)
  }
  const { fsStorage } = await import('./fs/index.js')
  return fsStorage({ ...opts.fs, ...settings, dir })
}

async function redisFromUrl (url: string, opts: StorageFromUrlOptions): Promise<Storage> {
  const parsed = parse(url)
  if (parsed.hostname === '') bad(url, 'has no host')
  if (!/^\/?(\d+)?$/.test(parsed.pathname)) bad(url, `has database "${parsed.pathname.slice(1)}"; it must be a number`)
  const settings = readParams(url, parsed.searchParams, { namespace: 'string', lockTtlMs: 'int', pollMs: 'int', commandTimeoutMs: 'int' })
  const connection = `${parsed.protocol}//${parsed.username || parsed.password ? `${parsed.username}${parsed.password ? `:${parsed.password}` : ''}@` : ''}${parsed.host}${parsed.pathname}`
  const { redisStorage } = await import('./redis/index.js')
  return redisStorage({ ...opts.redis, ...settings, url: connection, client: undefined })
}

async function s3FromUrl (url: string, opts: StorageFromUrlOptions): Promise<Storage> {
  const parsed = parse(url)
  if (parsed.hostname === '') bad(url, 'has no bucket')
  const settings = readParams(url, parsed.searchParams, {
    region: 'string', endpoint: 'string', forcePathStyle: 'boolean', lockTtlMs: 'int', pollMs: 'int', unsafeLocking: 'boolean',
  })
  if (typeof settings.endpoint === 'string' && !/^https?:\/\/[^/]/.test(settings.endpoint)) bad(url, `has endpoint "${settings.endpoint}"; it must be an http(s) URL`)
  const prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '')
  const { s3Storage } = await import('./s3/index.js')
  return s3Storage({ ...opts.s3, ...settings, bucket: decodeURIComponent(parsed.hostname), prefix })
}

type ParamType = 'string' | 'int' | 'boolean'

function readParams (url: string, params: URLSearchParams, known: Record<string, ParamType>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  for (const [name, value] of params) {
    const type = known[name]
    if (type === undefined) bad(url, `has an unknown parameter "${name}" (known: ${Object.keys(known).join(', ')})`)
    if (type === 'int') {
      if (!/^\d+$/.test(value) || Number(value) <= 0) bad(url, `has ${name}=${JSON.stringify(value)}; it must be a positive integer`)
      out[name] = Number(value)
    } else if (type === 'boolean') {
      if (!['true', 'false', '1', '0'].includes(value)) bad(url, `has ${name}=${JSON.stringify(value)}; it must be true or false`)
      out[name] = value === 'true' || value === '1'
    } else {
      if (value === '') bad(url, `has an empty ${name}`)
      out[name] = value
    }
  }
  return out
}

function parse (url: string): URL {
  try {
    return new URL(url)
  } catch (err) {
    return bad(url, `cannot be parsed (${(err as Error).message})`)
  }
}

function bad (url: unknown, problem: string): never {
  const shown = typeof url === 'string' ? JSON.stringify(maskUrl(url).slice(0, 200)) : String(url)
  throw new AcmeError(ErrorCodes.INVALID_OPTION, `storage URL ${shown} ${problem}`)
}
