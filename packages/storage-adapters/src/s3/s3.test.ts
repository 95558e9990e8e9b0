import { randomBytes } from 'node:crypto'
import { S3Client } from '@aws-sdk/client-s3'
import { services } from '@fastify-acme/harness/vitest'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { s3Storage } from './index.js'
import { createBucket, ownServer, randomName, storageOn, text } from './s3.test-helpers.js'

const bucket = randomName('s3-data')
const shared = () => services().s3
beforeAll(() => createBucket(shared(), bucket))

describe('s3 storage: values', () => {
  it('returns null for a missing key and round-trips strings, empty, binary and 1 MiB values', async () => {
    const storage = storageOn(shared(), bucket)
    expect(await storage.get('missing/key')).toBeNull()
    const values: Array<[string, Uint8Array | string]> = [
      ['a/text.json', '{"hello":"wörld"}'],
      ['a/empty', new Uint8Array(0)],
      ['a/binary', Uint8Array.from({ length: 256 }, (_, i) => i)],
      ['big/1mib', randomBytes(1024 * 1024)],
    ]
    for (const [key, value] of values) await storage.put(key, value)
    for (const [key, value] of values) {
      const got = await storage.get(key)
      expect(got).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(got!).equals(Buffer.from(typeof value === 'string' ? Buffer.from(value) : value))).toBe(true)
    }
  })

  it('overwrites and reads the new value at once from another instance', async () => {
    const a = storageOn(shared(), bucket)
    const b = storageOn(shared(), bucket, { prefix: a.prefix })
    for (let i = 0; i < 10; i++) {
      await a.put('k/v', `value ${i}`)
      expect(text(await b.get('k/v'))).toBe(`value ${i}`)
    }
  })

  it('keeps prefixes apart, and works without a prefix', async () => {
    const a = storageOn(shared(), bucket)
    const b = storageOn(shared(), bucket)
    await a.put('x/y', 'a')
    expect(await b.get('x/y')).toBeNull()
    expect(await b.list('x')).toEqual([])
    const otherBucket = randomName('s3-noprefix')
    await createBucket(shared(), otherBucket)
    const bare = storageOn(shared(), otherBucket, { prefix: '' })
    await bare.put('certificates/a/bundle.json', 'v')
    expect(await bare.list('certificates', { recursive: true })).toEqual(['certificates/a/bundle.json'])
  })

  it('refuses malformed keys and the reserved .locks directory with ERR_ACME_STORAGE_KEY', async () => {
    const storage = storageOn(shared(), bucket)
    for (const key of ['', '/a', 'a/', 'a//b', 'a/../b', '..', 'a b', '*.example.com', '.locks', '.locks/x.json']) {
      await expect(storage.put(key, 'x')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE_KEY' })
      await expect(storage.get(key)).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE_KEY' })
    }
    await expect(storage.put('a/b', 7 as unknown as string)).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
  })
})

describe('s3 storage: list, delete, stat', () => {
  it('lists direct children sorted, with sub-directories as keys without a slash, and everything when recursive', async () => {
    const storage = storageOn(shared(), bucket)
    for (const key of ['certs/b.com/bundle.json', 'certs/a.com/bundle.json', 'certs/a.com/state.json', 'certs/readme', 'certs/b.com.old', 'other/x']) {
      await storage.put(key, 'v')
    }
    expect(await storage.list('certs')).toEqual(['certs/a.com', 'certs/b.com', 'certs/b.com.old', 'certs/readme'])
    expect(await storage.list('certs', { recursive: true })).toEqual([
      'certs/a.com/bundle.json', 'certs/a.com/state.json', 'certs/b.com.old', 'certs/b.com/bundle.json', 'certs/readme',
    ])
    expect(await storage.list('nothing')).toEqual([])
  })

  it('deletes a value, a whole directory, and what does not exist, without touching neighbours', async () => {
    const storage = storageOn(shared(), bucket)
    for (const key of ['a/b/c', 'a/b/d/e', 'a/bc', 'a/b.x']) await storage.put(key, 'v')
    await storage.delete('a/b')
    expect(await storage.list('a', { recursive: true })).toEqual(['a/b.x', 'a/bc'])
    await storage.delete('never/there')
    await storage.delete('a/bc')
    expect(await storage.list('a')).toEqual(['a/b.x'])
  })

  it('stats a value, a directory and a missing key', async () => {
    const storage = storageOn(shared(), bucket)
    await storage.put('s/file', 'hello')
    const stat = await storage.stat('s/file')
    expect(stat).toMatchObject({ size: 5, isFile: true })
    expect(Math.abs(stat!.modified.getTime() - Date.now())).toBeLessThan(3000)
    expect(await storage.stat('s')).toEqual({ size: 0, modified: new Date(0), isFile: false })
    expect(await storage.stat('s/nothing')).toBeNull()
  })

  it('paginates ListObjectsV2 fully: 300 keys in pages of 2', async () => {
    const { server, storage } = await ownServer()
    const s = storage({ pageSize: 2 })
    const keys: string[] = []
    for (let d = 0; d < 30; d++) for (let f = 0; f < 10; f++) keys.push(`many/d${String(d).padStart(2, '0')}/f${f}`)
    keys.push('many/top-a', 'many/top-b', 'many/top-c')
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s.put(k, 'v')))
    const before = server.requests.length
    expect(await s.list('many', { recursive: true })).toEqual([...keys].sort())
    const pages = server.requests.slice(before).filter((r) => r.op === 'ListObjectsV2')
    expect(pages).toHaveLength(Math.ceil(keys.length / 2))
    const children = await s.list('many')
    expect(children).toHaveLength(33)
    expect(children.slice(0, 2)).toEqual(['many/d00', 'many/d01'])
    expect(children.slice(-3)).toEqual(['many/top-a', 'many/top-b', 'many/top-c'])
    await s.delete('many')
    expect(await s.list('many', { recursive: true })).toEqual([])
  })
})

describe('s3 storage: requests, retries and errors', () => {
  it('builds its client with WHEN_REQUIRED checksums and path-style URLs (no CRC32 on plain PUTs)', async () => {
    const { server, bucket: own, storage } = await ownServer()
    const s = storage()
    await s.put('a/b', 'v')
    expect(text(await s.get('a/b'))).toBe('v')
    const put = server.requests.find((r) => r.op === 'PutObject' && r.key.endsWith('a/b'))!
    expect(put.bucket).toBe(own)
    expect(Object.keys(put.headers).filter((h) => h.startsWith('x-amz-checksum'))).toEqual([])
    expect(put.headers['content-length']).toBe('1')
  })

  it('retries 503 SlowDown and 500 with backoff, then succeeds', async () => {
    const { server, storage } = await ownServer()
    const s = storage({ retryBaseMs: 10 })
    server.inject({ op: 'PutObject', action: { status: 503, code: 'SlowDown' }, times: 2 })
    server.inject({ op: 'GetObject', action: { status: 500, code: 'InternalError' }, times: 1 })
    server.inject({ op: 'GetObject', action: { drop: 'before' }, times: 1 })
    await s.put('a/b', 'v')
    expect(text(await s.get('a/b'))).toBe('v')
    expect(server.requests.filter((r) => r.op === 'PutObject').map((r) => r.status)).toEqual([503, 503, 200])
    expect(server.requests.filter((r) => r.op === 'GetObject').map((r) => r.status)).toEqual([500, 0, 200])
  })

  it('gives up after a bounded number of retries with ERR_ACME_STORAGE naming the key', async () => {
    const { server, storage } = await ownServer()
    const s = storage({ retries: 3, retryBaseMs: 10 })
    server.inject({ op: 'PutObject', action: { status: 503, code: 'SlowDown' }, times: Infinity })
    const started = Date.now()
    const err = await s.put('certificates/x/bundle.json', 'v').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_STORAGE', status: 503, retryable: true })
    expect((err as Error).message).toMatch(/PutObject of "certificates\/x\/bundle.json" failed \(503 SlowDown\)/)
    expect(server.requests.filter((r) => r.op === 'PutObject')).toHaveLength(4)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('honours Retry-After on SlowDown', async () => {
    const { server, storage } = await ownServer()
    const s = storage({ retryBaseMs: 1 })
    server.inject({ op: 'PutObject', action: { status: 503, code: 'SlowDown', retryAfter: 1 } })
    await s.put('a/b', 'v')
    const puts = server.requests.filter((r) => r.op === 'PutObject')
    expect(puts[1]!.at - puts[0]!.at).toBeGreaterThanOrEqual(950)
  })

  it('surfaces other 4xx at once (no retry) with the key, status and SDK error as cause', async () => {
    const { server, storage } = await ownServer()
    const s = storage()
    server.inject({ op: 'GetObject', action: { status: 403, code: 'AccessDenied', message: 'Access Denied' } })
    const err = await s.get('accounts/x.json').catch((e: unknown) => e) as Error & { cause?: { name?: string } }
    expect(err).toMatchObject({ code: 'ERR_ACME_STORAGE', status: 403, retryable: false })
    expect(err.message).toMatch(/GetObject of "accounts\/x.json" failed \(403 AccessDenied\)/)
    expect(err.cause?.name).toBe('AccessDenied')
    expect(server.requests.filter((r) => r.op === 'GetObject')).toHaveLength(1)
  })

  it('reports a missing bucket as ERR_ACME_STORAGE, not as a missing key', async () => {
    const s = storageOn(shared(), randomName('no-such-bucket'))
    await expect(s.get('a/b')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', message: expect.stringMatching(/NoSuchBucket/) })
    await expect(s.tryLock('n')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
  })

  it('times a hung request out after requestTimeoutMs and retries it', async () => {
    const { server, storage } = await ownServer()
    const s = storage({ requestTimeoutMs: 200, retryBaseMs: 10 })
    await s.put('a/b', 'v')
    server.inject({ op: 'GetObject', action: { delayMs: 1000 } })
    const started = Date.now()
    expect(text(await s.get('a/b'))).toBe('v')
    expect(Date.now() - started).toBeLessThan(900)
  })

  it('leaves a client it was given open, destroys its own, and refuses work after close()', async () => {
    const client = new S3Client(shared())
    onTestFinished(() => client.destroy())
    const given = s3Storage({ client, bucket, prefix: randomName('p') })
    await given.put('a/b', 'v')
    await given.close()
    expect(text(await storageOn(shared(), bucket, { client, prefix: randomName('p') }).get('a/b'))).toBeNull()
    await expect(given.get('a/b')).rejects.toMatchObject({ code: 'ERR_ACME_CLOSED' })
    await expect(given.tryLock('n')).rejects.toMatchObject({ code: 'ERR_ACME_CLOSED' })
  })

  it('refuses bad options with ERR_ACME_INVALID_OPTION naming the option', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /"bucket"/],
      [{ bucket: 'b/c' }, /"bucket"/],
      [{ bucket: 'b', prefix: '/x' }, /"prefix"/],
      [{ bucket: 'b', prefix: 'x/' }, /"prefix"/],
      [{ bucket: 'b', pageSize: 0 }, /"pageSize"/],
      [{ bucket: 'b', retries: -1 }, /"retries"/],
      [{ bucket: 'b', lockTtlMs: 1.5 }, /"lockTtlMs"/],
    ]
    for (const [opts, message] of cases) {
      expect(() => s3Storage({ ...shared(), ...opts } as never)).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(message) }))
    }
  })

  it('shows the bad value of an option, not its type', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ bucket: 'b', pageSize: 5000 }, '"pageSize" must be an integer from 1 to 1000, got 5000'],
      [{ bucket: 'b', retries: -1 }, '"retries" must be an integer >= 0, got -1'],
      [{ bucket: 'b', lockTtlMs: 1.5 }, '"lockTtlMs" must be an integer >= 1, got 1.5'],
      [{ bucket: 'b', lockTtlMs: 2 ** 31 }, '"lockTtlMs" must be at most 2147483647 ms (~24.8 days; Node\'s timers cannot count longer), got 2147483648'],
      [{ bucket: 7 }, '"bucket" must be a bucket name, got 7'],
    ]
    for (const [opts, message] of cases) {
      expect(() => s3Storage({ ...shared(), ...opts } as never)).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining(message) }))
    }
  })
})
