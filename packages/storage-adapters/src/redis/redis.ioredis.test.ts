import { services } from '@fastify-acme/harness/vitest'
import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { fromIoredis, redisStorage } from './index.js'
import { randomNamespace, sleep, storageOn, text, waitFor } from './redis.test-helpers.js'

function ioredisStorage (namespace = randomNamespace()) {
  const client = new Redis(services().redis.url)
  const storage = redisStorage({ client: fromIoredis(client), namespace, logger: { warn () {} } })
  onTestFinished(async () => {
    await storage.close()
    client.disconnect()
  })
  return { client, storage }
}

describe('redis storage through the ioredis shim', () => {
  it('round-trips values and lists, readable by a node-redis instance of the same namespace', async () => {
    const { storage } = ioredisStorage()
    const other = storageOn(services().redis.url, { namespace: storage.namespace })
    const binary = Uint8Array.from({ length: 256 }, (_, i) => 255 - i)
    await storage.put('certs/a.com/bundle.json', binary)
    await storage.put('certs/b.com', 'b')
    expect(Buffer.from((await other.get('certs/a.com/bundle.json'))!).equals(Buffer.from(binary))).toBe(true)
    expect(text(await storage.get('certs/b.com'))).toBe('b')
    expect(await storage.get('certs/none')).toBeNull()
    expect(await storage.list('certs')).toEqual(['certs/a.com', 'certs/b.com'])
    expect(await storage.stat('certs/a.com/bundle.json')).toMatchObject({ size: 256, isFile: true })
    await storage.delete('certs')
    expect(await other.list('certs', { recursive: true })).toEqual([])
  })

  it('locks against node-redis instances: exclusion, fences, release wakes the other side', async () => {
    const { storage } = ioredisStorage()
    const other = storageOn(services().redis.url, { namespace: storage.namespace, pollMs: 10_000 })
    const held = (await storage.tryLock('issue/a'))!
    expect(await other.tryLock('issue/a')).toBeNull()
    const waiting = other.lock('issue/a')
    await sleep(100)
    await held.release()
    const next = await waiting
    expect(next.fence).toBeGreaterThan(held.fence)
    const waitingHere = storage.lock('issue/a')
    await sleep(100)
    await next.release()
    const mine = await waitingHere
    expect(mine.fence).toBeGreaterThan(next.fence)
    await mine.release()
  })

  it('watches changes through a duplicated ioredis connection and leaves the given client open', async () => {
    const { client, storage } = ioredisStorage()
    const writer = storageOn(services().redis.url, { namespace: storage.namespace })
    const seen: string[] = []
    await storage.watch('certificates', (key) => seen.push(key))
    await writer.put('certificates/a/bundle.json', 'v')
    await waitFor(() => seen.length === 1)
    await storage.close()
    expect(client.status).toBe('ready')
    expect(await client.ping()).toBe('PONG')
  })

  it('bounds commands with commandTimeoutMs', async () => {
    const client = new Redis({ port: 1, lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: () => 50 })
    client.on('error', () => {})
    onTestFinished(() => { client.disconnect() })
    const storage = redisStorage({ client: fromIoredis(client), namespace: randomNamespace(), commandTimeoutMs: 200, logger: { warn () {} } })
    const started = Date.now()
    await expect(storage.get('a/b')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', message: expect.stringMatching(/timed out after 200 ms/) })
    expect(Date.now() - started).toBeLessThan(1000)
  })
})
