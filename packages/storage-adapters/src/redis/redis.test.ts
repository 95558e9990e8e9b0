import { randomBytes } from 'node:crypto'
import { services } from '@fastify-acme/harness/vitest'
import { createClient } from 'redis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { nodeRedisConnection, type RedisConnection } from './connection.js'
import { redisStorage } from './index.js'
import { ACQUIRE, RENEW } from './scripts.js'
import { keySlot, randomNamespace, rawClient, sleep, storageOn, text, waitFor } from './redis.test-helpers.js'

const url = () => services().redis.url

describe('redis storage: values', () => {
  it('returns null for a missing key and round-trips strings, empty, binary and 1 MiB values', async () => {
    const storage = storageOn(url())
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

  it('overwrites a value and reads the new one at once (read-after-write across instances)', async () => {
    const a = storageOn(url())
    const b = storageOn(url(), { namespace: a.namespace })
    for (let i = 0; i < 20; i++) {
      await a.put('k/v', `value ${i}`)
      expect(text(await b.get('k/v'))).toBe(`value ${i}`)
    }
  })

  it('keeps namespaces apart', async () => {
    const a = storageOn(url())
    const b = storageOn(url())
    await a.put('x/y', 'a')
    expect(await b.get('x/y')).toBeNull()
    expect(await b.list('x')).toEqual([])
  })

  it('refuses malformed keys with ERR_ACME_STORAGE_KEY and writes nothing', async () => {
    const storage = storageOn(url())
    for (const key of ['', '/a', 'a/', 'a//b', 'a/../b', '..', 'a b', '*.example.com', 'ünï']) {
      await expect(storage.put(key, 'x')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE_KEY' })
      await expect(storage.get(key)).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE_KEY' })
    }
    const raw = await rawClient(url())
    expect(await raw.keys(`{${storage.namespace}}*`)).toEqual([])
  })

  it('refuses a value that is neither bytes nor a string', async () => {
    const storage = storageOn(url())
    await expect(storage.put('a/b', 42 as unknown as string)).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
  })
})

describe('redis storage: list, delete, stat', () => {
  it('lists direct children sorted, with sub-directories as keys, and everything when recursive', async () => {
    const storage = storageOn(url())
    for (const key of ['certs/b.com/bundle.json', 'certs/a.com/bundle.json', 'certs/a.com/state.json', 'certs/readme', 'certs/b.com.old', 'other/x']) {
      await storage.put(key, 'v')
    }
    expect(await storage.list('certs')).toEqual(['certs/a.com', 'certs/b.com', 'certs/b.com.old', 'certs/readme'])
    expect(await storage.list('certs', { recursive: true })).toEqual([
      'certs/a.com/bundle.json', 'certs/a.com/state.json', 'certs/b.com.old', 'certs/b.com/bundle.json', 'certs/readme',
    ])
    expect(await storage.list('certs/a.com')).toEqual(['certs/a.com/bundle.json', 'certs/a.com/state.json'])
    expect(await storage.list('nothing')).toEqual([])
    expect(await storage.list('certs/readme')).toEqual([])
  })

  it('lists a directory of 2,000 children correctly (skip-scan over sub-directories)', async () => {
    const storage = storageOn(url())
    const raw = await rawClient(url())
    // written through the same script path, but in one round trip to keep the test fast
    const expected: string[] = []
    const multi = raw.multi()
    for (let i = 0; i < 1000; i++) {
      const dir = `d/${String(i).padStart(4, '0')}`
      expected.push(dir, `d/${String(i).padStart(4, '0')}.x`)
      multi.zAdd(`{${storage.namespace}}:i`, [{ score: 0, value: `${dir}/a` }, { score: 0, value: `${dir}/b` }, { score: 0, value: `${dir}.x` }])
    }
    await multi.exec()
    expect(await storage.list('d')).toEqual(expected.sort())
    expect(await storage.list('d', { recursive: true })).toHaveLength(3000)
  })

  it('deletes a value, a whole directory, and what does not exist, without touching neighbours', async () => {
    const storage = storageOn(url())
    for (const key of ['a/b/c', 'a/b/d/e', 'a/bc', 'a/b.x', 'a/b']) await storage.put(key, 'v')
    await storage.delete('a/b')
    expect(await storage.list('a', { recursive: true })).toEqual(['a/b.x', 'a/bc'])
    expect(await storage.get('a/b/c')).toBeNull()
    await storage.delete('a/b/c')
    await storage.delete('never/there')
    await storage.delete('a/bc')
    expect(await storage.list('a')).toEqual(['a/b.x'])
  })

  it('keeps the directory index exactly in step with the values', async () => {
    const storage = storageOn(url())
    const raw = await rawClient(url())
    const ns = storage.namespace
    await Promise.all(Array.from({ length: 50 }, (_, i) => storage.put(`x/${i % 7}/${i}`, String(i))))
    await Promise.all([storage.delete('x/3'), storage.delete('x/5/12'), storage.put('x/9/new', 'n')])
    const fields = (await raw.hKeys(`{${ns}}:d`)).sort()
    expect(await raw.zRange(`{${ns}}:i`, 0, -1)).toEqual(fields)
    expect((await raw.hKeys(`{${ns}}:m`)).sort()).toEqual(fields)
    expect(await storage.list('x', { recursive: true })).toEqual(fields)
  })

  it('stats a value (size, server mtime), a directory, and a missing key', async () => {
    const storage = storageOn(url())
    const before = Date.now()
    await storage.put('s/file', 'hello')
    const stat = await storage.stat('s/file')
    expect(stat).toMatchObject({ size: 5, isFile: true })
    expect(Math.abs(stat!.modified.getTime() - before)).toBeLessThan(2000)
    expect(await storage.stat('s')).toEqual({ size: 0, modified: new Date(0), isFile: false })
    expect(await storage.stat('s/nothing')).toBeNull()
    await storage.put('s/file', 'hello world!')
    expect((await storage.stat('s/file'))!.size).toBe(12)
  })
})

describe('redis storage: keys and clients', () => {
  it('puts every key of a namespace (values, index, locks, fences) in one Cluster hash slot', async () => {
    expect(keySlot('somekey')).toBe(11058)
    expect(keySlot('foo{hash_tag}')).toBe(2515)
    const storage = storageOn(url())
    await storage.put('certificates/a/bundle.json', 'v')
    await storage.put('challenges/http-01/t.json', 'v')
    const lock = (await storage.tryLock('issue/~2a.example.com'))!
    const raw = await rawClient(url())
    const keys = await raw.keys(`{${storage.namespace}}*`)
    expect(keys.sort()).toEqual([`{${storage.namespace}}:d`, `{${storage.namespace}}:f:issue/~2a.example.com`,
      `{${storage.namespace}}:i`, `{${storage.namespace}}:l:issue/~2a.example.com`, `{${storage.namespace}}:m`])
    expect(new Set(keys.map(keySlot)).size).toBe(1)
    await lock.release()
  })

  it('does not close a client it was given, but closes the one it opened from a URL', async () => {
    const client = createClient({ url: url() })
    await client.connect()
    onTestFinished(() => { client.destroy() })
    const given = redisStorage({ client, namespace: randomNamespace(), logger: { warn () {} } })
    await given.put('a/b', 'v')
    await given.watch('a', () => {})
    await given.close()
    expect(client.isOpen).toBe(true)
    expect(await client.ping()).toBe('PONG')

    const raw = await rawClient(url())
    const name = `owned-${randomNamespace()}`
    const owned = redisStorage({ url: url(), namespace: randomNamespace(), clientOptions: { name }, logger: { warn () {} } })
    await owned.put('a/b', 'v')
    await owned.watch('a', () => {})
    expect((await raw.clientList()).filter((c) => c.name === name)).toHaveLength(2)
    await owned.close()
    await waitFor(async () => (await raw.clientList()).every((c) => c.name !== name))
  })

  it('rejects operations after close() with ERR_ACME_CLOSED', async () => {
    const storage = redisStorage({ url: url(), namespace: randomNamespace(), logger: { warn () {} } })
    await storage.put('a/b', 'v')
    await storage.close()
    await storage.close()
    await expect(storage.get('a/b')).rejects.toMatchObject({ code: 'ERR_ACME_CLOSED' })
  })

  it('refuses bad options with ERR_ACME_INVALID_OPTION naming the option', async () => {
    const cases: Array<[Parameters<typeof redisStorage>[0], RegExp]> = [
      [{ url: url(), namespace: 'a{b}' }, /namespace/],
      [{ url: url(), namespace: '' }, /namespace/],
      [{ url: url(), lockTtlMs: 0 }, /lockTtlMs/],
      [{ url: url(), pollMs: 1.5 }, /pollMs/],
      [{ url: url(), commandTimeoutMs: -1 }, /commandTimeoutMs/],
      [{ url: 'http://localhost:6379' }, /"url".*http:\/\/localhost/],
      [{}, /"url"/],
      [{ url: 'redis://user:secret@localhost:1', client: createClient() }, /"url".*\*\*\*@/],
      [{ client: {} as never }, /"client"/],
    ]
    for (const [opts, message] of cases) {
      expect(() => redisStorage(opts)).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(message) }))
    }
  })

  it('shows the bad value of a numeric option, not its type', () => {
    const cases: Array<[Parameters<typeof redisStorage>[0], string]> = [
      [{ url: url(), commandTimeoutMs: 1.5 }, '"commandTimeoutMs" must be a positive integer (ms), got 1.5'],
      [{ url: url(), lockTtlMs: -1 }, '"lockTtlMs" must be a positive integer (ms), got -1'],
      [{ url: url(), pollMs: Number.NaN }, 'got NaN'],
      [{ url: url(), checkServer: true, namespace: 7 as never }, '"namespace" must be a string of 1 to 200 characters without { or }, got 7'],
    ]
    for (const [opts, message] of cases) {
      expect(() => redisStorage(opts)).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining(message) }))
    }
  })

  it('refuses a malformed URL when made, without the raw TypeError, and never shows its password', () => {
    const cases = [
      'redis://user:hunter2@127.0.0.1:notaport',
      'redis://admin:hunter2/def@cache:6379/0',
      'redis://admin:hunter2@ss@cache:6379/x',
      'redis://admin:hunter2%zz@cache:6379',
      'http://admin:hunter2/def@cache:6379/0',
    ]
    for (const bad of cases) {
      let err: (Error & { code?: string, input?: unknown }) | undefined
      try { redisStorage({ url: bad }) } catch (e) { err = e as typeof err }
      expect(err, bad).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(/"url" must be/) })
      expect(err!.message, bad).not.toMatch(/hunter2|ss@|def@/)
      expect(err!.cause, bad).toBeUndefined()
      expect(err!.input, bad).toBeUndefined()
    }
  })

  it('refuses a lease longer than Node timers can count (2^31-1 ms), naming it, and takes no lock', async () => {
    expect(() => redisStorage({ url: url(), lockTtlMs: 2 ** 31 })).toThrow(expect.objectContaining({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(/"lockTtlMs".*got 2147483648/) }))
    const storage = storageOn(url())
    await expect(storage.tryLock('n', { ttlMs: 30 * 24 * 3600 * 1000 })).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(/"ttlMs".*got 2592000000/) })
    await expect(storage.lock('n', { ttlMs: 2 ** 31 })).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
    const raw = await rawClient(url())
    expect(await raw.exists(`{${storage.namespace}}:l:n`)).toBe(0)
  })

  it('fails fast with ERR_ACME_STORAGE (not a hang) when Redis cannot be reached', async () => {
    const storage = storageOn('redis://127.0.0.1:1', { commandTimeoutMs: 300 })
    const started = Date.now()
    // the message says why (node-redis's TimeoutError has neither a name nor a message of its own)
    await expect(storage.put('a/b', 'v')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: true, message: expect.stringContaining('no answer from the server') })
    await expect(storage.tryLock('x')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it('runs the startup check once, at the first operation, and logs what it found once', async () => {
    const storage = storageOn(url())
    await storage.get('a/b')
    const check = await storage.checkServer()
    expect(check.appendonly).toMatch(/^(yes|no)$/)
    expect(check.maxmemoryPolicy).toBe('noeviction')
    expect(await storage.checkServer()).toBe(check)
    expect(storage.warnings).toEqual(check.warnings)
  })
})

describe('redis storage: locks', () => {
  it('grants a lock to one holder at a time and hands out increasing fences', async () => {
    const a = storageOn(url())
    const b = storageOn(url(), { namespace: a.namespace })
    const first = (await a.tryLock('issue/x'))!
    expect(first.token).toMatch(/^[0-9a-f-]{36}$/)
    expect(await b.tryLock('issue/x')).toBeNull()
    expect(await a.tryLock('issue/x')).toBeNull()
    const other = (await b.tryLock('issue/y'))!
    await first.release()
    const second = (await b.tryLock('issue/x'))!
    expect(second.fence).toBeGreaterThan(first.fence)
    await second.release()
    await other.release()
  })

  it('renews the lease while held (PTTL goes back up) and a renewal after a takeover fires lost', async () => {
    const storage = storageOn(url())
    const raw = await rawClient(url())
    const key = `{${storage.namespace}}:l:n`
    const handle = (await storage.tryLock('n', { ttlMs: 600 }))!
    await sleep(300)
    expect(await raw.pTTL(key)).toBeGreaterThan(350)
    await handle.renew()
    expect(await raw.pTTL(key)).toBeGreaterThan(500)
    await raw.set(key, 'someone-else', { PX: 10_000 })
    await expect(handle.renew()).rejects.toMatchObject({ code: 'ERR_ACME_LOCK_LOST' })
    expect(handle.lost.aborted).toBe(true)
    await handle.release()
    expect(await raw.get(key)).toBe('someone-else')
  })

  it('takes over from a holder cut off from Redis once its lease ran out, not before; the holder gets lost', async () => {
    const client = createClient({ url: url() })
    client.on('error', () => {})
    await client.connect()
    onTestFinished(() => { client.destroy() })
    let cut = false
    const inner = nodeRedisConnection(client, false, () => {})
    const partitioned: RedisConnection = { ...inner, send: (args, o) => cut ? Promise.reject(new Error('partitioned')) : inner.send(args, o) }
    const a = redisStorage({ client: partitioned, namespace: randomNamespace(), logger: { warn () {} } })
    onTestFinished(() => a.close())
    const b = storageOn(url(), { namespace: a.namespace, pollMs: 20 })
    const stale = (await a.tryLock('n', { ttlMs: 600 }))!
    cut = true
    const started = Date.now()
    const taken = await b.lock('n', { ttlMs: 5000 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(350)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(taken.fence).toBeGreaterThan(stale.fence)
    await waitFor(() => stale.lost.aborted, 400)
    cut = false
    await stale.release()
    const raw = await rawClient(url())
    expect(await raw.get(`{${a.namespace}}:l:n`)).toBe(taken.token)
    await taken.release()
  })

  it('frees a lock whose acquisition reply was lost (applied, then the connection failed), instead of blocking a whole TTL', async () => {
    const client = createClient({ url: url() })
    client.on('error', () => {})
    await client.connect()
    onTestFinished(() => { client.destroy() })
    const inner = nodeRedisConnection(client, false, () => {})
    let loseNextAcquireReply = true
    const lossy: RedisConnection = {
      ...inner,
      async send (args, o) {
        const reply = await inner.send(args, o)
        if (loseNextAcquireReply && args[1] === ACQUIRE.sha) {
          loseNextAcquireReply = false
          throw new Error('read ECONNRESET')
        }
        return reply
      },
    }
    const a = redisStorage({ client: lossy, namespace: randomNamespace(), logger: { warn () {} } })
    onTestFinished(() => a.close())
    const b = storageOn(url(), { namespace: a.namespace })
    await expect(a.tryLock('n', { ttlMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', message: expect.stringMatching(/ECONNRESET/) })
    await waitFor(async () => (await b.tryLock('n').then((h) => h?.release().then(() => true)) ?? false) === true, 1000)
  })

  it('times the first lease from before the SET: with a slow acquire reply, lost still fires by the server\'s expiry', async () => {
    const client = createClient({ url: url() })
    client.on('error', () => {})
    await client.connect()
    onTestFinished(() => { client.destroy() })
    const inner = nodeRedisConnection(client, false, () => {})
    let sentAt = 0
    let cut = false
    const slow: RedisConnection = {
      ...inner,
      async send (args, o) {
        if (cut) throw new Error('partitioned')
        if (args[1] !== ACQUIRE.sha && args[1] !== ACQUIRE.source) return inner.send(args, o)
        sentAt = Date.now()
        const reply = await inner.send(args, o)
        await sleep(400) // the SET ran; its reply is slow
        cut = true // and then A is partitioned: no renewal gets through
        return reply
      },
    }
    const a = redisStorage({ client: slow, namespace: randomNamespace(), checkServer: false, logger: { warn () {} } })
    onTestFinished(() => a.close())
    const b = storageOn(url(), { namespace: a.namespace, pollMs: 10 })
    const held = (await a.tryLock('n', { ttlMs: 600 }))!
    let lostAt = 0
    held.lost.addEventListener('abort', () => { lostAt = Date.now() })
    const taken = await b.lock('n', { ttlMs: 5000 })
    const takenAt = Date.now()
    await waitFor(() => lostAt > 0, 1500)
    // the old holder must give up no later than the server let another one in
    expect(lostAt - sentAt).toBeLessThanOrEqual(620)
    expect(lostAt).toBeLessThanOrEqual(takenAt + 20)
    await taken.release()
  })

  it('release() after a loss by the local deadline still frees the lock its landed renewals kept alive', async () => {
    const client = createClient({ url: url() })
    client.on('error', () => {})
    await client.connect()
    onTestFinished(() => { client.destroy() })
    const inner = nodeRedisConnection(client, false, () => {})
    let renewalsFail = false
    const lossy: RedisConnection = {
      ...inner,
      async send (args, o) {
        const reply = await inner.send(args, o)
        // the renewal is applied, but its reply never arrives in time
        if (renewalsFail && (args[1] === RENEW.sha || args[1] === RENEW.source)) throw new Error('timed out')
        return reply
      },
    }
    const a = redisStorage({ client: lossy, namespace: randomNamespace(), checkServer: false, logger: { warn () {} } })
    onTestFinished(() => a.close())
    const raw = await rawClient(url())
    const key = `{${a.namespace}}:l:n`
    const handle = (await a.tryLock('n', { ttlMs: 600 }))!
    renewalsFail = true
    await waitFor(() => handle.lost.aborted, 2000)
    expect(await raw.get(key)).toBe(handle.token) // still ours on the server
    await handle.release()
    expect(await raw.exists(key)).toBe(0)
  })

  it('does not let a non-owner release: after expiry and takeover the old handle leaves the new lock alone', async () => {
    const a = storageOn(url())
    const b = storageOn(url(), { namespace: a.namespace })
    const raw = await rawClient(url())
    const old = (await a.tryLock('n', { ttlMs: 300 }))!
    await raw.del(`{${a.namespace}}:l:n`)
    const current = (await b.tryLock('n', { ttlMs: 5000 }))!
    await old.release()
    expect(await raw.get(`{${a.namespace}}:l:n`)).toBe(current.token)
    await current.release()
  })

  it('wakes a waiter through pub/sub as soon as the holder releases (long poll interval)', async () => {
    const a = storageOn(url())
    const b = storageOn(url(), { namespace: a.namespace, pollMs: 10_000 })
    const held = (await a.tryLock('n'))!
    const waiting = b.lock('n')
    await sleep(200)
    const released = Date.now()
    await held.release()
    const next = await waiting
    expect(Date.now() - released).toBeLessThan(150)
    await next.release()
  })

  it('rejects a waiting lock() with ERR_ACME_ABORTED when its signal aborts, leaving no lock behind', async () => {
    const a = storageOn(url())
    const b = storageOn(url(), { namespace: a.namespace })
    const held = (await a.tryLock('n'))!
    const controller = new AbortController()
    const waiting = b.lock('n', { signal: controller.signal })
    await sleep(100)
    const aborted = Date.now()
    controller.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ACME_ABORTED' })
    expect(Date.now() - aborted).toBeLessThan(100)
    await held.release()
    const raw = await rawClient(url())
    expect(await raw.exists(`{${a.namespace}}:l:n`)).toBe(0)
  })

  it('serialises 20 concurrent lock() callers from 4 storages: no overlap, every fence distinct', async () => {
    const first = storageOn(url())
    const storages = [first, ...Array.from({ length: 3 }, () => storageOn(url(), { namespace: first.namespace }))]
    let inside = 0
    let maxInside = 0
    const fences: number[] = []
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const handle = await storages[i % 4]!.lock('counter', { ttlMs: 5000 })
      inside++
      maxInside = Math.max(maxInside, inside)
      fences.push(handle.fence)
      await sleep(2)
      inside--
      await handle.release()
    }))
    expect(maxInside).toBe(1)
    expect(new Set(fences).size).toBe(20)
    expect(fences).toEqual([...fences].sort((x, y) => x - y))
  })

  it('treats hostile lock names as opaque: no collision, no escape from the namespace', async () => {
    const storage = storageOn(url())
    const names = ['*.example.com', '..', '/', 'a/b', 'a:b', '{x}', 'ünïcödé', 'a/../b']
    const handles = await Promise.all(names.map((n) => storage.tryLock(n)))
    expect(handles.every((h) => h !== null)).toBe(true)
    const raw = await rawClient(url())
    const keys = await raw.keys(`{${storage.namespace}}:l:*`)
    expect(keys).toHaveLength(names.length)
    expect(new Set(keys.map(keySlot)).size).toBe(1)
    await Promise.all(handles.map((h) => h!.release()))
    await expect(storage.tryLock('')).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
  })

  it('releases the locks it still holds on close()', async () => {
    const a = redisStorage({ url: url(), namespace: randomNamespace(), logger: { warn () {} } })
    const b = storageOn(url(), { namespace: a.namespace })
    const handle = (await a.tryLock('n'))!
    await a.close()
    expect(handle.lost.aborted).toBe(true)
    const next = (await b.tryLock('n'))!
    expect(next).not.toBeNull()
    await next.release()
  })
})

describe('redis storage: watch()', () => {
  it("sees another instance's puts and deletes under the prefix, and nothing else", async () => {
    const watcher = storageOn(url())
    const writer = storageOn(url(), { namespace: watcher.namespace })
    const other = storageOn(url())
    const seen: string[] = []
    const stop = await watcher.watch('certificates', (key) => seen.push(key))
    await other.put('certificates/z/bundle.json', 'other namespace')
    await writer.put('challenges/x', 'not watched')
    await writer.put('certificates/a.com/bundle.json', 'renewed')
    await writer.put('certificates/b.com/bundle.json', 'renewed')
    await writer.delete('certificates/a.com')
    await waitFor(() => seen.length >= 3)
    await sleep(50)
    expect(seen).toEqual(['certificates/a.com/bundle.json', 'certificates/b.com/bundle.json', 'certificates/a.com/bundle.json'])
    await stop()
    await writer.put('certificates/c.com/bundle.json', 'after stop')
    await sleep(100)
    expect(seen).toHaveLength(3)
  })

  it('lets several watchers share one subscriber connection', async () => {
    const watcher = storageOn(url())
    const writer = storageOn(url(), { namespace: watcher.namespace })
    const all: string[] = []
    const certs: string[] = []
    await watcher.watch('', (k) => all.push(k))
    await watcher.watch('certificates/a.com', (k) => certs.push(k))
    await writer.put('certificates/a.com/bundle.json', 'v')
    await writer.put('certificates/a.com.evil/bundle.json', 'v')
    await waitFor(() => all.length === 2)
    await sleep(50)
    expect(certs).toEqual(['certificates/a.com/bundle.json'])
  })
})
