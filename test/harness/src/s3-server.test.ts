import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import {
  CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand,
  HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException,
  type ListObjectsV2CommandOutput, type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startS3Server, type S3ServerOptions } from './s3-server.js'

const Bucket = 'test-bucket'
// The third column is how the SDK frames a streamed PutObject body under that config.
const checksumConfigs: Array<[string, Partial<S3ClientConfig>, string]> = [
  ['default checksums', {}, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'],
  ['WHEN_REQUIRED checksums', { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }, 'UNSIGNED-PAYLOAD'],
]

async function start (opts: S3ServerOptions = {}, config: Partial<S3ClientConfig> = {}) {
  const server = await startS3Server(opts)
  const client = new S3Client({ ...server.clientConfig(), ...config })
  onTestFinished(async () => {
    client.destroy()
    await server.close()
  })
  await client.send(new CreateBucketCommand({ Bucket }))
  return { server, client }
}

async function failure (promise: Promise<unknown>): Promise<S3ServiceException> {
  const err = await promise.then(() => { throw new Error('expected the request to fail') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(S3ServiceException)
  return err as S3ServiceException
}

async function read (client: S3Client, Key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket, Key }))
  return Buffer.from(await res.Body!.transformToByteArray())
}

function md5 (body: Buffer | string): string {
  return `"${createHash('md5').update(body).digest('hex')}"`
}

describe.each(checksumConfigs)('s3 server through @aws-sdk/client-s3 (%s)', (_, config, streamedPayload) => {
  it('round-trips empty, binary, 1 MiB and streamed values under awkward keys', async () => {
    const { server, client } = await start({}, config)
    const values: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['dir/binary*all-bytes', Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
      ['big/1MiB', randomBytes(1024 * 1024)],
      ['ünï cödé/+ %20 & ? #/x', Buffer.from('unicode key')],
    ]
    for (const [Key, Body] of values) {
      const before = Math.floor(Date.now() / 1000) * 1000
      const put = await client.send(new PutObjectCommand({ Bucket, Key, Body }))
      expect(put.ETag).toBe(md5(Body))
      expect((await read(client, Key)).equals(Body)).toBe(true)
      const head = await client.send(new HeadObjectCommand({ Bucket, Key }))
      expect(head.ContentLength).toBe(Body.length)
      expect(head.ETag).toBe(md5(Body))
      expect(head.ContentType).toBe('application/octet-stream')
      expect(head.LastModified!.getTime()).toBeGreaterThanOrEqual(before)
      expect(head.LastModified!.getTime()).toBeLessThanOrEqual(Date.now())
    }
    const streamed = randomBytes(100_000)
    const chunks = [streamed.subarray(0, 30_000), streamed.subarray(30_000)]
    await client.send(new PutObjectCommand({ Bucket, Key: 'streamed', Body: Readable.from(chunks), ContentLength: streamed.length, ContentType: 'text/x-test' }))
    expect(server.requests.at(-1)!.headers['x-amz-content-sha256']).toBe(streamedPayload)
    const got = await client.send(new GetObjectCommand({ Bucket, Key: 'streamed' }))
    expect(got.ContentType).toBe('text/x-test')
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(streamed)).toBe(true)
  })

  it('answers NoSuchKey / NotFound for missing keys and deletes idempotently', async () => {
    const { client } = await start({}, config)
    await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }))
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }))
    const del = await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }))
    expect(del.$metadata.httpStatusCode).toBe(204)
    const get = await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k' })))
    expect([get.name, get.$metadata.httpStatusCode]).toEqual(['NoSuchKey', 404])
    const head = await failure(client.send(new HeadObjectCommand({ Bucket, Key: 'k' })))
    expect([head.name, head.$metadata.httpStatusCode]).toEqual(['NotFound', 404])
  })

  it('knows which buckets exist', async () => {
    const { client } = await start({}, config)
    await client.send(new CreateBucketCommand({ Bucket }))
    expect((await client.send(new HeadBucketCommand({ Bucket }))).$metadata.httpStatusCode).toBe(200)
    const head = await failure(client.send(new HeadBucketCommand({ Bucket: 'nope' })))
    expect(head.$metadata.httpStatusCode).toBe(404)
    const put = await failure(client.send(new PutObjectCommand({ Bucket: 'nope', Key: 'k', Body: 'v' })))
    expect([put.name, put.$metadata.httpStatusCode]).toEqual(['NoSuchBucket', 404])
  })

  it('refuses a second If-None-Match: * create with 412', async () => {
    const { client } = await start({}, config)
    await client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'first', IfNoneMatch: '*' }))
    const err = await failure(client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'second', IfNoneMatch: '*' })))
    expect(err.$metadata.httpStatusCode).toBe(412)
    expect(err.name).toBe('PreconditionFailed')
    expect((await read(client, 'lock')).toString()).toBe('first')
  })

  it('lets exactly one of 10 concurrent If-None-Match: * creates win', async () => {
    const { client } = await start({}, config)
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) =>
      client.send(new PutObjectCommand({ Bucket, Key: 'race', Body: `writer ${i}`, IfNoneMatch: '*' }))))
    const winners = results.flatMap((r, i) => r.status === 'fulfilled' ? [i] : [])
    expect(winners).toHaveLength(1)
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as S3ServiceException).$metadata.httpStatusCode).toBe(412)
    }
    expect((await read(client, 'race')).toString()).toBe(`writer ${winners[0]}`)
  })

  it('applies If-Match only on the current ETag and answers 404 for a missing key', async () => {
    const { client } = await start({}, config)
    const first = await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v1' }))
    const second = await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v2', IfMatch: first.ETag }))
    expect(second.ETag).toBe(md5('v2'))
    const stale = await failure(client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v3', IfMatch: first.ETag })))
    expect([stale.name, stale.$metadata.httpStatusCode]).toEqual(['PreconditionFailed', 412])
    expect((await read(client, 'k')).toString()).toBe('v2')
    const missing = await failure(client.send(new PutObjectCommand({ Bucket, Key: 'none', Body: 'v', IfMatch: second.ETag })))
    expect([missing.name, missing.$metadata.httpStatusCode]).toEqual(['NoSuchKey', 404])
  })

  it('deletes conditionally on the ETag', async () => {
    const { client } = await start({}, config)
    const put = await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }))
    const wrong = await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', IfMatch: md5('other') })))
    expect([wrong.name, wrong.$metadata.httpStatusCode]).toEqual(['PreconditionFailed', 412])
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k', IfMatch: put.ETag }))
    await failure(client.send(new HeadObjectCommand({ Bucket, Key: 'k' })))
    const missing = await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', IfMatch: '*' })))
    expect([missing.name, missing.$metadata.httpStatusCode]).toEqual(['NoSuchKey', 404])
  })

  it('deletes in batches', async () => {
    const { client } = await start({}, config)
    for (const Key of ['a', 'b', 'c']) await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }))
    const res = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'a' }, { Key: 'c' }, { Key: 'x&<y>' }] } }))
    expect(res.Deleted?.map((d) => d.Key)).toEqual(['a', 'c', 'x&<y>'])
    const list = await client.send(new ListObjectsV2Command({ Bucket }))
    expect(list.Contents?.map((c) => c.Key)).toEqual(['b'])
  })

  it('lists 500 keys completely and in UTF-8 order at page size 7', async () => {
    const { client } = await start({}, config)
    const keys = Array.from({ length: 490 }, (_, i) => `certs/${String(i).padStart(4, '0')}.pem`)
    keys.push('certs/\u{1F512}', 'certs/\uFFFD', 'certs/é', 'certs/Z', 'certs/a&b<c>"\'', 'certs/*.example.com', 'certs/ sp', 'certs/~', 'certs/\u00A0', 'certs/\u{10000}')
    await Promise.all(keys.map((Key) => client.send(new PutObjectCommand({ Bucket, Key, Body: Key }))))
    await client.send(new PutObjectCommand({ Bucket, Key: 'other/x', Body: 'x' }))
    const seen: string[] = []
    let ContinuationToken: string | undefined
    let pages = 0
    do {
      const page: ListObjectsV2CommandOutput = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'certs/', MaxKeys: 7, ContinuationToken }))
      expect(page.KeyCount).toBe(page.Contents?.length)
      expect(page.KeyCount).toBeLessThanOrEqual(7)
      seen.push(...page.Contents!.map((c) => c.Key!))
      ContinuationToken = page.NextContinuationToken
      expect(page.IsTruncated).toBe(ContinuationToken !== undefined)
      pages++
    } while (ContinuationToken !== undefined)
    expect(pages).toBe(Math.ceil(500 / 7))
    expect(seen).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))
    expect(seen.indexOf('certs/\uFFFD')).toBeLessThan(seen.indexOf('certs/\u{1F512}'))
  })

  it('rolls keys up into CommonPrefixes with a delimiter, across pages', async () => {
    const { client } = await start({}, config)
    const keys = ['a/1', 'a/2', 'a/3', 'b', 'c/d/1', 'c/d/2', 'c/e', 'd', 'e/1']
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }))
    const all = await client.send(new ListObjectsV2Command({ Bucket, Delimiter: '/' }))
    expect(all.Contents?.map((c) => c.Key)).toEqual(['b', 'd'])
    expect(all.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['a/', 'c/', 'e/'])
    const nested = await client.send(new ListObjectsV2Command({ Bucket, Delimiter: '/', Prefix: 'c/' }))
    expect(nested.Contents?.map((c) => c.Key)).toEqual(['c/e'])
    expect(nested.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['c/d/'])
    const items: string[] = []
    let ContinuationToken: string | undefined
    do {
      const page: ListObjectsV2CommandOutput = await client.send(new ListObjectsV2Command({ Bucket, Delimiter: '/', MaxKeys: 1, ContinuationToken }))
      items.push(...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!))
      ContinuationToken = page.NextContinuationToken
    } while (ContinuationToken !== undefined)
    expect(items).toEqual(['a/', 'b', 'c/', 'd', 'e/'])
    const after = await client.send(new ListObjectsV2Command({ Bucket, StartAfter: 'c/e' }))
    expect(after.Contents?.map((c) => c.Key)).toEqual(['d', 'e/1'])
  })
})

describe('s3 server modes and faults', () => {
  it('ignores conditionals like s3rver when asked', async () => {
    const { client } = await start({ ignoreConditionals: true })
    await client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'first', IfNoneMatch: '*' }))
    await client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'second', IfNoneMatch: '*' }))
    await client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'third', IfMatch: '"bogus"' }))
    expect((await read(client, 'lock')).toString()).toBe('third')
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'lock', IfMatch: '"bogus"' }))
    await failure(client.send(new HeadObjectCommand({ Bucket, Key: 'lock' })))
  })

  it('answers conditional deletes with 501 when conditional delete is off', async () => {
    const { client } = await start({ noConditionalDelete: true })
    const put = await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }))
    const err = await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'k', IfMatch: put.ETag })))
    expect([err.name, err.$metadata.httpStatusCode]).toEqual(['NotImplemented', 501])
    expect((await read(client, 'k')).toString()).toBe('v')
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'k' }))
  })

  it('honours If-Match and If-None-Match on GET', async () => {
    const { client } = await start()
    const put = await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }))
    const notModified = await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k', IfNoneMatch: put.ETag })))
    expect(notModified.$metadata.httpStatusCode).toBe(304)
    const changed = await failure(client.send(new GetObjectCommand({ Bucket, Key: 'k', IfMatch: md5('other') })))
    expect(changed.$metadata.httpStatusCode).toBe(412)
    const same = await client.send(new GetObjectCommand({ Bucket, Key: 'k', IfMatch: put.ETag }))
    expect(await same.Body!.transformToString()).toBe('v')
  })

  it('serves the previous version during the stale-read window, but decides conditionals on the current one', async () => {
    const { client } = await start({ staleReadMs: 300 })
    await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'old' }))
    const put = await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'new' }))
    expect((await read(client, 'k')).toString()).toBe('old')
    expect((await client.send(new HeadObjectCommand({ Bucket, Key: 'k' }))).ETag).toBe(md5('old'))
    await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'newer', IfMatch: put.ETag }))
    await new Promise((resolve) => setTimeout(resolve, 350))
    expect((await read(client, 'k')).toString()).toBe('newer')
  })

  it('retries a 503 SlowDown and logs both attempts', async () => {
    const { server, client } = await start()
    server.inject({ op: 'PutObject', key: 'k', action: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.', retryAfter: 1 } })
    await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }))
    const attempts = server.requests.filter((r) => r.op === 'PutObject')
    expect(attempts.map((r) => r.status)).toEqual([503, 200])
    expect(attempts.map((r) => r.headers['amz-sdk-request'])).toEqual(['attempt=1; max=3', 'attempt=2; max=3'])
    expect((await read(client, 'k')).toString()).toBe('v')
  })

  it('surfaces injected errors, matching faults by op, key pattern and count', async () => {
    const { server, client } = await start({}, { maxAttempts: 1 })
    server.inject({ op: 'PutObject', key: /^locks\//, times: 2, action: { status: 409, code: 'ConditionalRequestConflict' } })
    await client.send(new PutObjectCommand({ Bucket, Key: 'data/k', Body: 'v' }))
    for (let i = 0; i < 2; i++) {
      const err = await failure(client.send(new PutObjectCommand({ Bucket, Key: 'locks/a', Body: 'v', IfNoneMatch: '*' })))
      expect([err.name, err.$metadata.httpStatusCode]).toEqual(['ConditionalRequestConflict', 409])
    }
    await client.send(new PutObjectCommand({ Bucket, Key: 'locks/a', Body: 'v', IfNoneMatch: '*' }))
    server.inject({ op: 'GetObject', times: Infinity, action: { status: 500, code: 'InternalError' } })
    for (let i = 0; i < 3; i++) expect((await failure(read(client, 'data/k'))).$metadata.httpStatusCode).toBe(500)
    server.clearFaults()
    expect((await read(client, 'data/k')).toString()).toBe('v')
  })

  it('applies the write and then drops the connection on drop: after', async () => {
    const { server, client } = await start({}, { maxAttempts: 1 })
    server.inject({ op: 'PutObject', action: { drop: 'after' } })
    const err = await client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'mine', IfNoneMatch: '*' })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    expect(err).not.toBeInstanceOf(S3ServiceException)
    expect((await read(client, 'lock')).toString()).toBe('mine')
    expect(server.requests.filter((r) => r.op === 'PutObject').map((r) => r.status)).toEqual([200])
  })

  it('drops the connection without applying the write on drop: before, and delays on delayMs', async () => {
    const { server, client } = await start({}, { maxAttempts: 1 })
    server.inject({ op: 'PutObject', action: { drop: 'before' } })
    await expect(client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }))).rejects.toThrow()
    expect((await failure(read(client, 'k'))).name).toBe('NoSuchKey')
    server.inject({ op: 'HeadBucket', action: { delayMs: 200 } })
    const started = Date.now()
    await client.send(new HeadBucketCommand({ Bucket }))
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    expect(server.requests.map((r) => r.op)).toEqual(['CreateBucket', 'PutObject', 'GetObject', 'HeadBucket'])
  })
})

describe('s3 server wire format', () => {
  function raw (endpoint: string, method: string, path: string, headers: Record<string, string> = {}, body = '') {
    return new Promise<{ status: number, headers: Record<string, unknown>, body: string }>((resolve, reject) => {
      const req = request(`${endpoint}${path}`, { method, headers }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
      })
      req.on('error', reject).end(body)
    })
  }

  it('sends Date, x-amz-request-id and XML errors with the key', async () => {
    const { server } = await start()
    const res = await raw(server.endpoint, 'GET', `/${Bucket}/no/such%20key`)
    expect(res.status).toBe(404)
    expect(Math.abs(Date.parse(res.headers.date as string) - Date.now())).toBeLessThan(2000)
    expect(res.headers['x-amz-request-id']).toMatch(/^[0-9A-F]{16}$/)
    expect(res.body).toContain('<Error><Code>NoSuchKey</Code>')
    expect(res.body).toContain('<Key>no/such key</Key>')
    expect(res.body).toContain(`<RequestId>${res.headers['x-amz-request-id'] as string}</RequestId>`)
  })

  it('decodes signed aws-chunked bodies and rejects a wrong checksum trailer', async () => {
    const { server, client } = await start()
    const headers = { 'content-encoding': 'aws-chunked', 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '11' }
    const body = '6;chunk-signature=aa\r\nhello \r\n5;chunk-signature=bb\r\nworld\r\n0;chunk-signature=cc\r\n\r\n'
    expect((await raw(server.endpoint, 'PUT', `/${Bucket}/chunked`, headers, body)).status).toBe(200)
    expect((await read(client, 'chunked')).toString()).toBe('hello world')
    const badTrailer = body.replace(/\r\n\r\n$/, '\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n')
    const bad = await raw(server.endpoint, 'PUT', `/${Bucket}/bad`, headers, badTrailer)
    expect([bad.status, bad.body.includes('<Code>BadDigest</Code>')]).toEqual([400, true])
  })

  it('runs standalone and prints its endpoint as one JSON line', async () => {
    const script = fileURLToPath(new URL('./s3-server.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', '--ignore-conditionals'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    onTestFinished(() => { child.kill('SIGKILL') })
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
      })
      child.once('exit', () => reject(new Error(`server exited early: ${out}`)))
    })
    const { endpoint } = JSON.parse(line) as { endpoint: string }
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const client = new S3Client({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, forcePathStyle: true })
    await client.send(new CreateBucketCommand({ Bucket }))
    await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'one', IfNoneMatch: '*' }))
    await client.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'two', IfNoneMatch: '*' }))
    expect((await read(client, 'k')).toString()).toBe('two')
    client.destroy()
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 20_000)
})
