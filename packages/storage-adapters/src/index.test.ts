import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { services } from '@fastify-acme/harness/vitest'
import type { Storage } from '@fastify-acme/core'
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { storageFromUrl } from './index.js'

const scratch = mkdtempSync(join(tmpdir(), 'storage-from-url-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }))

async function open (url: string, opts?: Parameters<typeof storageFromUrl>[1]): Promise<Storage> {
  const storage = await storageFromUrl(url, opts)
  onTestFinished(async () => { await storage.close?.() })
  return storage
}

/** put, get, list and a lock: the storage really works. */
async function roundTrip (storage: Storage): Promise<void> {
  await storage.put('certificates/a.com/bundle.json', 'chain')
  expect(Buffer.from((await storage.get('certificates/a.com/bundle.json'))!).toString()).toBe('chain')
  expect(await storage.list('certificates')).toEqual(['certificates/a.com'])
  const lock = await storage.lock('issue/a.com', { ttlMs: 5000 })
  expect(await storage.tryLock('issue/a.com')).toBeNull()
  await lock.release()
  await storage.delete('certificates')
}

const invalid = (message: RegExp) => expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(message) })
const random = () => Math.random().toString(36).slice(2, 10)

describe('storageFromUrl: real round trips', () => {
  it('file:///absolute/dir', async () => {
    const dir = join(scratch, 'abs dir')
    const storage = await open(`${pathToFileURL(dir).href}?lockTtlMs=5000`)
    await roundTrip(storage)
    await storage.put('a/b', 'x')
    const again = await open(`file://${dir}`)
    expect(await again.get('a/b')).not.toBeNull()
  })

  it('file:relative and file:./relative, against cwd', async () => {
    const a = await open('file:./rel-a', { cwd: scratch })
    await roundTrip(a)
    await a.put('x/y', 'v')
    const b = await open('file:rel-a', { cwd: scratch })
    expect(await b.get('x/y')).not.toBeNull()
    const c = await open(`file:${join(scratch, 'rel-a')}`)
    expect(await c.get('x/y')).not.toBeNull()
  })

  it('redis://host:port/db?namespace=x', async () => {
    const ns = `url-${random()}`
    const storage = await open(`${services().redis.url}/0?namespace=${ns}&lockTtlMs=5000&commandTimeoutMs=2000`, { redis: { logger: { warn () {} } } })
    await roundTrip(storage)
    await storage.put('a/b', 'v')
    const same = await open(`${services().redis.url}?namespace=${ns}`, { redis: { logger: { warn () {} } } })
    expect(await same.get('a/b')).not.toBeNull()
    const otherDb = await open(`${services().redis.url}/1?namespace=${ns}`, { redis: { logger: { warn () {} } } })
    expect(await otherDb.get('a/b')).toBeNull()
    expect((storage as { namespace?: string }).namespace).toBe(ns)
  })

  it('s3://bucket/prefix?region&endpoint&forcePathStyle, credentials from the AWS environment', async () => {
    const s3 = services().s3
    const bucket = `url-${random()}`
    const admin = new S3Client(s3)
    await admin.send(new CreateBucketCommand({ Bucket: bucket }))
    admin.destroy()
    vi.stubEnv('AWS_ACCESS_KEY_ID', s3.credentials.accessKeyId)
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.credentials.secretAccessKey)
    onTestFinished(() => { vi.unstubAllEnvs() })
    const url = `s3://${bucket}/acme/prod?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true&pollMs=100`
    const storage = await open(url)
    await roundTrip(storage)
    await storage.put('a/b', 'v')
    const same = await open(`s3://${bucket}/acme/prod/?region=${s3.region}&endpoint=${s3.endpoint}&forcePathStyle=1`)
    expect(await same.get('a/b')).not.toBeNull()
    const parent = await open(`s3://${bucket}/acme?region=${s3.region}&endpoint=${s3.endpoint}&forcePathStyle=true`)
    expect(Buffer.from((await parent.get('prod/a/b'))!).toString()).toBe('v')
  })
})

describe('storageFromUrl: parsing', () => {
  it('builds a TLS client for rediss:// (it cannot reach a plain-TCP server)', async () => {
    const storage = await open(`${services().redis.url.replace('redis:', 'rediss:')}?namespace=tls&commandTimeoutMs=300`, { redis: { logger: { warn () {} } } })
    await expect(storage.get('a/b')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
  })

  it('refuses unsupported schemes and malformed URLs, naming the value', async () => {
    await expect(storageFromUrl('http://example.com/x')).rejects.toThrow(invalid(/"http:\/\/example.com\/x" has an unsupported scheme "http:"/))
    await expect(storageFromUrl('memory:')).rejects.toThrow(invalid(/unsupported scheme "memory:"/))
    await expect(storageFromUrl('/var/lib/acme')).rejects.toThrow(invalid(/unsupported scheme \(none\)/))
    await expect(storageFromUrl('')).rejects.toThrow(invalid(/is not a storage URL/))
    await expect(storageFromUrl(42 as unknown as string)).rejects.toThrow(invalid(/42 is not a storage URL/))
    await expect(storageFromUrl('file://server/share')).rejects.toThrow(invalid(/remote host/))
    await expect(storageFromUrl('file:')).rejects.toThrow(invalid(/has no directory/))
  })

  it('refuses unknown and malformed parameters, naming them', async () => {
    await expect(storageFromUrl('redis://localhost:6379/0?nmespace=x')).rejects.toThrow(invalid(/unknown parameter "nmespace" \(known: namespace/))
    await expect(storageFromUrl('redis://localhost:6379/zero')).rejects.toThrow(invalid(/database "zero"/))
    await expect(storageFromUrl('redis://localhost?lockTtlMs=-5')).rejects.toThrow(invalid(/lockTtlMs="-5".*positive integer/))
    await expect(storageFromUrl('redis://?namespace=x')).rejects.toThrow(invalid(/has no host/))
    await expect(storageFromUrl('redis://localhost?namespace=a{b}')).rejects.toThrow(invalid(/namespace/))
    await expect(storageFromUrl('s3:///prefix')).rejects.toThrow(invalid(/has no bucket/))
    await expect(storageFromUrl('s3://b/p?forcePathStyle=yes')).rejects.toThrow(invalid(/forcePathStyle="yes".*true or false/))
    await expect(storageFromUrl('s3://b/p?endpoint=localhost:9000')).rejects.toThrow(invalid(/endpoint "localhost:9000".*http\(s\) URL/))
    await expect(storageFromUrl('s3://b/p?region=')).rejects.toThrow(invalid(/empty region/))
    await expect(storageFromUrl('file:///tmp/x?dir=/etc')).rejects.toThrow(invalid(/unknown parameter "dir"/))
  })

  it('never shows a password in an error', async () => {
    const err = await storageFromUrl('redis://user:hunter2@localhost:6379/x').catch((e: unknown) => e) as Error
    expect(err.message).toContain('redis://user:***@localhost')
    expect(err.message).not.toContain('hunter2')
  })

  it('masks the whole password, even one holding / or @ (up to the last @)', async () => {
    for (const url of ['redis://admin:hunter2/def@cache:6379/0', 'redis://admin:hunter2@ss@cache:6379/x', 'redis://admin:hunter2@ss@cache:6379/0?nmespace=x']) {
      const err = await storageFromUrl(url).catch((e: unknown) => e) as Error & { code?: string }
      expect(err.code, url).toBe('ERR_ACME_INVALID_OPTION')
      expect(err.message, url).toContain('redis://admin:***@cache')
      expect(err.message, url).not.toMatch(/hunter2|def@|ss@/)
    }
  })

  it('loads only the adapter its scheme needs: a file: user never loads node-redis or the AWS SDK', async () => {
    const script = `
      import { createRequire } from 'node:module'
      const { storageFromUrl } = await import(${JSON.stringify(pathToFileURL(fileURLToPath(new URL('./index.ts', import.meta.url))).href)})
      const loaded = () => Object.keys(createRequire(import.meta.url).cache)
      const has = (name) => loaded().some((p) => p.includes('/node_modules/' + name + '/'))
      const storage = await storageFromUrl(process.argv[1])
      await storage.put('a/b', 'v')
      console.log(JSON.stringify({ s3: has('@aws-sdk/client-s3'), redis: has('@redis/client') }))
      await storage.close?.()
      process.exit(0)
    `
    const run = async (url: string) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script, url], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      })
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as { s3: boolean, redis: boolean }
    }
    expect(await run(pathToFileURL(join(scratch, 'lazy')).href)).toEqual({ s3: false, redis: false })
    expect(await run(`${services().redis.url}?namespace=lazy-${random()}`)).toEqual({ s3: false, redis: true })
  }, 30_000)
})
