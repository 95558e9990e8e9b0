import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { crc32 } from 'node:zlib'

/** Options of the in-repo S3-compatible test server. */
export interface S3ServerOptions {
  /** interface to listen on; default '127.0.0.1' */
  host?: string
  /** port to listen on; default 0 (a free port) */
  port?: number
  /** imitate s3rver: accept If-None-Match / If-Match and ignore them */
  ignoreConditionals?: boolean
  /** answer conditional DeleteObject (If-Match) with 501 NotImplemented, like servers without conditional deletes */
  noConditionalDelete?: boolean
  /** serve the previous version of an object for this many ms after an overwrite (eventual-consistency window) */
  staleReadMs?: number
}

/** A fault applied to the next matching requests, after the request body has been read. */
export interface S3Fault {
  /** S3 operation name: 'PutObject' | 'GetObject' | 'HeadObject' | 'DeleteObject' | 'DeleteObjects' | 'ListObjectsV2' | 'CreateBucket' | 'HeadBucket' */
  op?: string
  /** object key filter: exact string or RegExp */
  key?: string | RegExp
  /** how many matching requests to affect (default 1; Infinity for all) */
  times?: number
  /**
   * an error answer (e.g. 503 SlowDown, 500 InternalError, 409 ConditionalRequestConflict; retryAfter in seconds),
   * a dropped connection before the request is applied, or after it is applied but before any answer,
   * or a delay before normal processing
   */
  action:
    | { status: number, code: string, message?: string, retryAfter?: number }
    | { drop: 'before' }
    | { drop: 'after' }
    | { delayMs: number }
}

/** One request as the server saw it; `status` is 0 when the connection was dropped before any answer was computed. */
export interface S3RequestRecord {
  op: string
  method: string
  bucket: string
  key: string
  status: number
  /** arrival time, ms since the epoch */
  at: number
  headers: Record<string, string | string[] | undefined>
}

/** A running server. */
export interface S3Server {
  /** e.g. http://127.0.0.1:PORT */
  endpoint: string
  /** always 'us-east-1' */
  region: string
  /** any values; signatures are not verified */
  credentials: { accessKeyId: string, secretAccessKey: string }
  /** every request received, faulted ones included, in arrival order */
  requests: S3RequestRecord[]
  inject (fault: S3Fault): void
  clearFaults (): void
  /** a ready-made config for new S3Client(...) : endpoint, region, credentials, forcePathStyle: true */
  clientConfig (): { endpoint: string, region: string, credentials: { accessKeyId: string, secretAccessKey: string }, forcePathStyle: true }
  close (): Promise<void>
}

interface StoredObject {
  body: Buffer
  etag: string
  lastModified: Date
  contentType: string
  checksums: Record<string, string>
  previous?: StoredObject
}

interface Bucket {
  objects: Map<string, StoredObject>
  /** keys in UTF-8 binary order, kept sorted on insert and delete */
  keys: string[]
}

interface Reply {
  status: number
  headers?: Record<string, string>
  body?: Buffer | string
}

const REGION = 'us-east-1'
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/'
const CHECKSUMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256']
const DIGESTS: Record<string, (body: Buffer) => string> = {
  crc32: (body) => Buffer.from(crc32(body).toString(16).padStart(8, '0'), 'hex').toString('base64'),
  sha1: (body) => createHash('sha1').update(body).digest('base64'),
  sha256: (body) => createHash('sha256').update(body).digest('base64'),
}

class S3Error extends Error {
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

const noSuchKey = (): S3Error => new S3Error(404, 'NoSuchKey', 'The specified key does not exist.')
const preconditionFailed = (): S3Error => new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')

export async function startS3Server (opts: S3ServerOptions = {}): Promise<S3Server> {
  const buckets = new Map<string, Bucket>()
  const faults: Array<S3Fault & { left: number }> = []
  const requests: S3RequestRecord[] = []
  const conditionals = opts.ignoreConditionals !== true
  const staleReadMs = opts.staleReadMs ?? 0

  function getBucket (name: string): Bucket {
    const bucket = buckets.get(name)
    if (bucket === undefined) throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist')
    return bucket
  }

  function current (bucket: Bucket, key: string): StoredObject {
    const obj = bucket.objects.get(key)
    if (obj === undefined) throw noSuchKey()
    return obj
  }

  function readable (bucket: Bucket, key: string): StoredObject {
    const obj = current(bucket, key)
    const stale = obj.previous !== undefined && Date.now() - obj.lastModified.getTime() < staleReadMs
    return stale ? obj.previous! : obj
  }

  function remove (bucket: Bucket, key: string): void {
    if (!bucket.objects.delete(key)) return
    const { index } = search(bucket.keys, key)
    bucket.keys.splice(index, 1)
  }

  function putObject (req: IncomingMessage, bucketName: string, key: string, raw: Buffer): Reply {
    const bucket = getBucket(bucketName)
    if (req.headers['x-amz-copy-source'] !== undefined) throw new S3Error(501, 'NotImplemented', 'CopyObject is not implemented')
    const { body, trailers } = decodeBody(req, raw)
    const checksums = verifyChecksums(req, body, trailers)
    const existing = bucket.objects.get(key)
    if (conditionals) {
      const ifNoneMatch = header(req, 'if-none-match')
      const ifMatch = header(req, 'if-match')
      if (ifNoneMatch !== undefined && existing !== undefined && etagMatches(ifNoneMatch, existing.etag)) throw preconditionFailed()
      // Like AWS: If-Match on a missing key is 404 NoSuchKey (Ceph says 412).
      if (ifMatch !== undefined && existing === undefined) throw noSuchKey()
      if (ifMatch !== undefined && !etagMatches(ifMatch, existing!.etag)) throw preconditionFailed()
    }
    const obj: StoredObject = {
      body,
      etag: `"${createHash('md5').update(body).digest('hex')}"`,
      lastModified: new Date(),
      contentType: header(req, 'content-type') ?? 'application/octet-stream',
      checksums,
      previous: existing === undefined ? undefined : { ...existing, previous: undefined },
    }
    if (existing === undefined) {
      const { index } = search(bucket.keys, key)
      bucket.keys.splice(index, 0, key)
    }
    bucket.objects.set(key, obj)
    return { status: 200, headers: { etag: obj.etag, ...checksumHeaders(obj) } }
  }

  function getObject (req: IncomingMessage, bucketName: string, key: string, head: boolean): Reply {
    const obj = readable(getBucket(bucketName), key)
    const headers: Record<string, string> = {
      etag: obj.etag,
      'last-modified': obj.lastModified.toUTCString(),
      'content-type': obj.contentType,
      'content-length': String(obj.body.length),
    }
    if (header(req, 'x-amz-checksum-mode') === 'ENABLED') Object.assign(headers, checksumHeaders(obj))
    if (conditionals) {
      const ifMatch = header(req, 'if-match')
      const ifNoneMatch = header(req, 'if-none-match')
      if (ifMatch !== undefined && !etagMatches(ifMatch, obj.etag)) throw preconditionFailed()
      if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, obj.etag)) {
        return { status: 304, headers: { etag: obj.etag, 'last-modified': headers['last-modified']! } }
      }
    }
    return { status: 200, headers, body: head ? undefined : obj.body }
  }

  function deleteObject (req: IncomingMessage, bucketName: string, key: string): Reply {
    const bucket = getBucket(bucketName)
    const ifMatch = header(req, 'if-match')
    if (conditionals && ifMatch !== undefined) {
      if (opts.noConditionalDelete === true) throw new S3Error(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented')
      // Like AWS: a conditional delete of a missing key is 404 NoSuchKey, not 412.
      if (!etagMatches(ifMatch, current(bucket, key).etag)) throw preconditionFailed()
    }
    remove(bucket, key)
    return { status: 204 }
  }

  function deleteObjects (bucketName: string, body: Buffer): Reply {
    const bucket = getBucket(bucketName)
    const xml = body.toString('utf8')
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/.test(xml)
    if (xml.includes('<ETag>')) throw new S3Error(501, 'NotImplemented', 'Conditional DeleteObjects (per-object ETag) is not implemented')
    let out = ''
    for (const [, inner] of xml.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
      const key = unescapeXml(/<Key>([\s\S]*?)<\/Key>/.exec(inner!)?.[1] ?? '')
      remove(bucket, key)
      if (!quiet) out += `<Deleted><Key>${escapeXml(key)}</Key></Deleted>`
    }
    return xmlReply(200, `<DeleteResult xmlns="${XMLNS}">${out}</DeleteResult>`)
  }

  function listObjectsV2 (bucketName: string, query: URLSearchParams): Reply {
    const bucket = getBucket(bucketName)
    const prefix = query.get('prefix') ?? ''
    const delimiter = query.get('delimiter') ?? ''
    const maxKeys = Math.min(Math.max(Number(query.get('max-keys') ?? 1000) || 0, 0), 1000)
    const token = query.get('continuation-token')
    const startAfter = query.get('start-after') ?? ''
    let after = startAfter
    if (token !== null) {
      after = Buffer.from(token, 'base64url').toString('utf8')
      if (token === '' || Buffer.from(after).toString('base64url') !== token) {
        throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect')
      }
    }
    const rollUp = (key: string): string | undefined => {
      const at = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length)
      return at < 0 ? undefined : key.slice(0, at + delimiter.length)
    }
    // A token that names a common prefix resumes after every key under it.
    let lastPrefix = token !== null && after.startsWith(prefix) ? rollUp(after) : undefined
    let start = search(bucket.keys, prefix).index
    if (after !== '' && compareUtf8(after, prefix) >= 0) {
      const found = search(bucket.keys, after)
      start = found.index + (found.found ? 1 : 0)
    }
    let contents = ''
    let prefixes = ''
    let count = 0
    let last = ''
    let truncated = false
    for (let i = start; i < bucket.keys.length; i++) {
      const key = bucket.keys[i]!
      if (!key.startsWith(prefix)) break
      const common = rollUp(key)
      if (common !== undefined && common === lastPrefix) continue
      if (count >= maxKeys) {
        truncated = true
        break
      }
      count++
      if (common !== undefined) {
        lastPrefix = last = common
        prefixes += `<CommonPrefixes><Prefix>${escapeXml(common)}</Prefix></CommonPrefixes>`
        continue
      }
      const obj = bucket.objects.get(key)!
      last = key
      contents += `<Contents><Key>${escapeXml(key)}</Key><LastModified>${obj.lastModified.toISOString()}</LastModified>` +
        `<ETag>${escapeXml(obj.etag)}</ETag><Size>${obj.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`
    }
    const optional = (tag: string, value: string | null | undefined): string => value == null || value === '' ? '' : `<${tag}>${value}</${tag}>`
    return xmlReply(200, `<ListBucketResult xmlns="${XMLNS}"><Name>${escapeXml(bucketName)}</Name>` +
      `<Prefix>${escapeXml(prefix)}</Prefix>${optional('Delimiter', delimiter && escapeXml(delimiter))}<MaxKeys>${maxKeys}</MaxKeys>` +
      `<KeyCount>${count}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
      `${optional('ContinuationToken', token && escapeXml(token))}${optional('StartAfter', startAfter && escapeXml(startAfter))}` +
      `${optional('NextContinuationToken', truncated ? Buffer.from(last).toString('base64url') : '')}${contents}${prefixes}</ListBucketResult>`)
  }

  // dispatch() never awaits: each conditional check and its in-memory swap run in one tick, so they are atomic.
  function dispatch (req: IncomingMessage, op: string, bucket: string, key: string, query: URLSearchParams, body: Buffer): Reply {
    switch (op) {
      case 'CreateBucket':
        if (!buckets.has(bucket)) buckets.set(bucket, { objects: new Map(), keys: [] })
        return { status: 200, headers: { location: `/${bucket}` } }
      case 'HeadBucket':
        getBucket(bucket)
        return { status: 200, headers: { 'x-amz-bucket-region': REGION } }
      case 'ListObjectsV2': return listObjectsV2(bucket, query)
      case 'DeleteObjects': return deleteObjects(bucket, body)
      case 'PutObject': return putObject(req, bucket, key, body)
      case 'GetObject': return getObject(req, bucket, key, false)
      case 'HeadObject': return getObject(req, bucket, key, true)
      case 'DeleteObject': return deleteObject(req, bucket, key)
      default: throw new S3Error(501, 'NotImplemented', `${req.method} ${req.url} is not implemented`)
    }
  }

  function takeFault (op: string, key: string): S3Fault['action'] | undefined {
    const index = faults.findIndex((f) => (f.op === undefined || f.op === op) &&
      (f.key === undefined || (typeof f.key === 'string' ? f.key === key : key.search(f.key) >= 0)))
    if (index < 0) return undefined
    const fault = faults[index]!
    if (--fault.left <= 0) faults.splice(index, 1)
    return fault.action
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readAll(req)
    const url = new URL(req.url ?? '/', 'http://s3.local')
    const [bucket = '', ...rest] = url.pathname.slice(1).split('/').map((part) => decodeURIComponent(part))
    const key = rest.join('/')
    const op = operation(req.method ?? '', bucket, key, url.searchParams)
    const record: S3RequestRecord = { op, method: req.method ?? '', bucket, key, status: 0, at: Date.now(), headers: req.headers }
    requests.push(record)
    const requestId = randomBytes(8).toString('hex').toUpperCase()
    const action = takeFault(op, key)
    if (action !== undefined && 'delayMs' in action) await new Promise((resolve) => setTimeout(resolve, action.delayMs))
    if (action !== undefined && 'drop' in action && action.drop === 'before') {
      req.socket.destroy()
      return
    }
    let reply: Reply
    try {
      if (action !== undefined && 'status' in action) {
        const retry: Record<string, string> = action.retryAfter === undefined ? {} : { 'retry-after': String(action.retryAfter) }
        reply = errorReply(new S3Error(action.status, action.code, action.message ?? action.code), key, requestId, retry)
      } else {
        reply = dispatch(req, op, bucket, key, url.searchParams, raw)
      }
    } catch (err) {
      if (!(err instanceof S3Error)) throw err
      reply = errorReply(err, key, requestId)
    }
    record.status = reply.status
    if (action !== undefined && 'drop' in action) {
      req.socket.destroy()
      return
    }
    const body = req.method === 'HEAD' || reply.status === 304 ? undefined : reply.body
    res.writeHead(reply.status, {
      date: new Date().toUTCString(),
      'x-amz-request-id': requestId,
      'x-amz-id-2': requestId,
      ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
      ...reply.headers,
    })
    res.end(body)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy()
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve)
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const endpoint = `http://${host}:${address.port}`
  const credentials = { accessKeyId: 'test-access-key', secretAccessKey: 'test-secret-key' }
  return {
    endpoint,
    region: REGION,
    credentials,
    requests,
    inject: (fault) => { faults.push({ ...fault, left: fault.times ?? 1 }) },
    clearFaults: () => { faults.length = 0 },
    clientConfig: () => ({ endpoint, region: REGION, credentials: { ...credentials }, forcePathStyle: true }),
    close: () => new Promise<void>((resolve, reject) => {
      server.close((err) => err === undefined ? resolve() : reject(err))
      server.closeAllConnections()
    }),
  }
}

function operation (method: string, bucket: string, key: string, query: URLSearchParams): string {
  if (bucket === '') return method === 'GET' ? 'ListBuckets' : 'Unknown'
  if (query.has('uploads') || query.has('uploadId')) return 'Unknown'
  if (key === '') {
    if (method === 'PUT' && [...query.keys()].every((k) => k === 'x-id')) return 'CreateBucket'
    if (method === 'HEAD') return 'HeadBucket'
    if (method === 'POST' && query.has('delete')) return 'DeleteObjects'
    if (method === 'GET' && query.get('list-type') === '2') return 'ListObjectsV2'
    return 'Unknown'
  }
  const ops: Record<string, string> = { PUT: 'PutObject', GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' }
  return ops[method] ?? 'Unknown'
}

function header (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

function etagMatches (condition: string, etag: string): boolean {
  const bare = (s: string): string => s.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
  return condition.split(',').some((c) => c.trim() === '*' || bare(c) === bare(etag))
}

/** Undo the SDK's aws-chunked framing: `hex-size[;chunk-signature=...]\r\n data \r\n ... 0\r\n trailers \r\n\r\n`. */
function decodeBody (req: IncomingMessage, raw: Buffer): { body: Buffer, trailers: Record<string, string> } {
  const chunked = (header(req, 'content-encoding') ?? '').includes('aws-chunked') ||
    (header(req, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-')
  if (!chunked) return { body: raw, trailers: {} }
  const parts: Buffer[] = []
  let pos = 0
  for (;;) {
    const eol = raw.indexOf('\r\n', pos)
    const size = eol < 0 ? NaN : parseInt(raw.toString('latin1', pos, eol).split(';')[0]!, 16)
    if (Number.isNaN(size) || eol + 2 + size > raw.length) throw new S3Error(400, 'IncompleteBody', 'Malformed aws-chunked body')
    pos = eol + 2
    if (size === 0) break
    parts.push(raw.subarray(pos, pos + size))
    pos += size + 2
  }
  const trailers: Record<string, string> = {}
  for (const line of raw.toString('latin1', pos).split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const body = Buffer.concat(parts)
  const decodedLength = header(req, 'x-amz-decoded-content-length')
  if (decodedLength !== undefined && Number(decodedLength) !== body.length) {
    throw new S3Error(400, 'IncompleteBody', 'x-amz-decoded-content-length does not match the body')
  }
  return { body, trailers }
}

/** Check the checksums the client sent (as headers or aws-chunked trailers) and return them for storage. */
function verifyChecksums (req: IncomingMessage, body: Buffer, trailers: Record<string, string>): Record<string, string> {
  const stored: Record<string, string> = {}
  for (const alg of CHECKSUMS) {
    const name = `x-amz-checksum-${alg}`
    const sent = header(req, name) ?? trailers[name]
    if (sent === undefined) continue
    if (DIGESTS[alg] !== undefined && DIGESTS[alg](body) !== sent) {
      throw new S3Error(400, 'BadDigest', `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`)
    }
    stored[name] = sent
  }
  return stored
}

function checksumHeaders (obj: StoredObject): Record<string, string> {
  const present = Object.keys(obj.checksums).length > 0
  return present ? { ...obj.checksums, 'x-amz-checksum-type': 'FULL_OBJECT' } : {}
}

function errorReply (err: S3Error, key: string, requestId: string, extra: Record<string, string> = {}): Reply {
  const keyXml = key === '' ? '' : `<Key>${escapeXml(key)}</Key>`
  return xmlReply(err.status, `<Error><Code>${escapeXml(err.code)}</Code><Message>${escapeXml(err.message)}</Message>` +
    `${keyXml}<RequestId>${requestId}</RequestId></Error>`, extra)
}

function xmlReply (status: number, xml: string, extra: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/xml', ...extra }, body: `<?xml version="1.0" encoding="UTF-8"?>\n${xml}` }
}

function escapeXml (s: string): string {
  return s.replace(/[&<>"'\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' })[c]!)
}

function unescapeXml (s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)))
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e.toLowerCase()]!
  })
}

function compareUtf8 (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** Binary search in a UTF-8 sorted array: the index of `key`, or where it would be inserted. */
function search (keys: string[], key: string): { index: number, found: boolean } {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const cmp = compareUtf8(keys[mid]!, key)
    if (cmp === 0) return { index: mid, found: true }
    if (cmp < 0) lo = mid + 1
    else hi = mid
  }
  return { index: lo, found: false }
}

async function readAll (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'ignore-conditionals': { type: 'boolean' },
      'no-conditional-delete': { type: 'boolean' },
      'stale-read-ms': { type: 'string' },
    },
  })
  const server = await startS3Server({
    host: values.host,
    port: values.port === undefined ? 0 : Number(values.port),
    ignoreConditionals: values['ignore-conditionals'],
    noConditionalDelete: values['no-conditional-delete'],
    staleReadMs: values['stale-read-ms'] === undefined ? undefined : Number(values['stale-read-ms']),
  })
  process.stdout.write(JSON.stringify({ endpoint: server.endpoint, region: server.region }) + '\n')
  const stop = (): void => { server.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
