import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { services } from '@fastify-acme/harness/vitest'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createBucket, ownServer, randomName, sleep, storageOn } from './s3.test-helpers.js'

const lockKey = (prefix: string, name: string) => `${prefix}/.locks/${name}.json`
const body = (json: string) => JSON.parse(json) as { token: string, seq: number, fence?: number, released?: boolean }

describe('s3 locks: the conditional-write probe', () => {
  it('passes on a server with conditional writes and cleans up after itself', async () => {
    const { storage, keys } = await ownServer()
    const s = storage()
    expect(await s.probe()).toEqual({ conditionalDelete: true })
    expect(await keys()).toEqual([])
  })

  it('refuses a server that ignores conditional writes (s3rver-like), clearly and for good', async () => {
    const { server, storage, keys } = await ownServer({ ignoreConditionals: true })
    const s = storage()
    const err = await s.lock('issue/a').catch((e: unknown) => e) as Error & { code?: string, retryable?: boolean }
    expect(err).toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: false })
    expect(err.message).toMatch(/does not honour conditional writes: it ignored If-None-Match: \*.*it ignored If-Match.*unsafeLocking/)
    await expect(s.tryLock('issue/a')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
    await expect(s.probe()).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
    // probed once; no lock object written; data still works
    expect(server.requests.filter((r) => r.op === 'PutObject' && r.key.includes('.probe-'))).toHaveLength(3)
    expect(await keys()).toEqual([])
    await s.put('a/b', 'v')
    expect(await s.get('a/b')).not.toBeNull()
  })

  it('refuses a server that rejects the conditional headers themselves (501 NotImplemented)', async () => {
    const { server, storage } = await ownServer()
    const s = storage()
    server.inject({ op: 'PutObject', key: /\.probe-/, action: { status: 501, code: 'NotImplemented' } })
    await expect(s.probe()).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: false, message: expect.stringMatching(/rejected If-None-Match: \*.*501 NotImplemented/) })
    await expect(s.lock('n')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: false })
    expect(server.requests.filter((r) => r.key.includes('.probe-'))).toHaveLength(1)
  })

  it('with unsafeLocking: true, locks anyway on such a server and warns', async () => {
    const { storage } = await ownServer({ ignoreConditionals: true })
    const s = storage({ unsafeLocking: true })
    const handle = await s.lock('issue/a', { ttlMs: 5000 })
    expect(s.warnings).toEqual([expect.stringMatching(/does not honour conditional writes.*Continuing because unsafeLocking is true/)])
    await handle.release()
  })

  it('keeps the real cause of a probe failure: missing credentials are not retryable, an unreachable endpoint is', async () => {
    const { storage } = await ownServer()
    const noCredentials = storage({
      retries: 0,
      credentials: async () => { throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }) },
    })
    const err = await noCredentials.lock('n').catch((e: unknown) => e) as Error & { code?: string, retryable?: boolean }
    expect(err).toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: false, message: expect.stringMatching(/CredentialsProviderError.*Could not load credentials/) })
    expect(err.cause).toMatchObject({ name: 'CredentialsProviderError' })

    const down = storageOn({ ...services().s3, endpoint: 'http://127.0.0.1:1' }, 'b', { retries: 0, requestTimeoutMs: 2000 })
    const unreachable = await down.tryLock('n').catch((e: unknown) => e) as Error & { code?: string, retryable?: boolean }
    expect(unreachable).toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: true, message: expect.stringMatching(/probe.*ECONNREFUSED/) })
    expect(unreachable.cause).toBeDefined()
  })

  it('retries the probe after a network failure instead of remembering it', async () => {
    const { server, storage } = await ownServer()
    const s = storage({ retries: 0 })
    server.inject({ op: 'PutObject', key: /\.probe-/, action: { status: 403, code: 'AccessDenied' } })
    await expect(s.tryLock('n')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
    server.inject({ op: 'PutObject', key: /\.probe-/, action: { drop: 'before' } })
    await expect(s.tryLock('n')).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE', retryable: true })
    const handle = (await s.tryLock('n'))!
    expect(handle).not.toBeNull()
    await handle.release()
  })
})

describe('s3 locks: acquire, renew, release', () => {
  it('grants one holder at a time, keeps lock objects out of list(), and fences increase', async () => {
    const { storage, read } = await ownServer()
    const a = storage()
    const b = storage({ prefix: a.prefix })
    await a.put('issue/data', 'v')
    const first = (await a.tryLock('issue/x', { ttlMs: 10_000 }))!
    expect(await b.tryLock('issue/x')).toBeNull()
    expect(await a.tryLock('issue/x')).toBeNull()
    expect(body((await read(lockKey(a.prefix, 'issue~2fx'))).text)).toMatchObject({ token: first.token, fence: first.fence })
    expect(await a.list('issue')).toEqual(['issue/data'])
    await first.release()
    const second = (await b.tryLock('issue/x'))!
    expect(second.fence).toBeGreaterThan(first.fence)
    await second.release()
  })

  it('renews by itself with If-Match and never deletes a lock without If-Match', async () => {
    const { server, storage, read } = await ownServer()
    const s = storage()
    const handle = await s.lock('n', { ttlMs: 900 })
    await sleep(1000)
    expect(handle.lost.aborted).toBe(false)
    const renewals = server.requests.filter((r) => r.op === 'PutObject' && r.key === lockKey(s.prefix, 'n'))
    expect(renewals.length).toBeGreaterThanOrEqual(3)
    expect(renewals.slice(1).every((r) => typeof r.headers['if-match'] === 'string')).toBe(true)
    expect(body((await read(lockKey(s.prefix, 'n'))).text).seq).toBeGreaterThanOrEqual(2)
    await handle.release()
    const deletes = server.requests.filter((r) => r.op === 'DeleteObject' && r.key === lockKey(s.prefix, 'n'))
    expect(deletes).toHaveLength(1)
    expect(deletes[0]!.headers['if-match']).toMatch(/^"[0-9a-f]{32}"$/)
  })

  it('retries an injected 409 ConditionalRequestConflict on acquire and on renew', async () => {
    const { server, storage } = await ownServer()
    const s = storage()
    await s.probe()
    server.inject({ op: 'PutObject', key: /\.locks\/n\.json$/, action: { status: 409, code: 'ConditionalRequestConflict' }, times: 2 })
    const handle = (await s.tryLock('n', { ttlMs: 10_000 }))!
    expect(handle).not.toBeNull()
    server.inject({ op: 'PutObject', key: /\.locks\/n\.json$/, action: { status: 409, code: 'ConditionalRequestConflict' }, times: 2 })
    await handle.renew()
    expect(handle.lost.aborted).toBe(false)
    expect(server.requests.filter((r) => r.status === 409)).toHaveLength(4)
    await handle.release()
  })

  it('ambiguous acquire (PUT applied, connection dropped): finds its own token, no deadlock, no double holder', async () => {
    const { server, storage } = await ownServer()
    const a = storage()
    const b = storage({ prefix: a.prefix })
    await a.probe()
    server.inject({ op: 'PutObject', key: /\.locks\/n\.json$/, action: { drop: 'after' } })
    const handle = (await a.tryLock('n', { ttlMs: 10_000 }))!
    expect(handle).not.toBeNull()
    expect(server.requests.some((r) => r.op === 'PutObject' && r.status === 200 && r.key.endsWith('n.json'))).toBe(true)
    expect(await b.tryLock('n')).toBeNull()
    await handle.release()
    const next = (await b.tryLock('n'))!
    expect(next.fence).toBeGreaterThan(handle.fence)
    await next.release()
  })

  it('ambiguous acquire (connection dropped before the PUT was applied) simply tries again', async () => {
    const { server, storage } = await ownServer()
    const s = storage()
    await s.probe()
    server.inject({ op: 'PutObject', key: /\.locks\/n\.json$/, action: { drop: 'before' } })
    const handle = (await s.tryLock('n'))!
    expect(handle).not.toBeNull()
    await handle.release()
  })

  it('ambiguous renewal (applied, answer lost) keeps the lock', async () => {
    const { server, storage } = await ownServer()
    const s = storage()
    const handle = (await s.tryLock('n', { ttlMs: 10_000 }))!
    server.inject({ op: 'PutObject', key: /\.locks\/n\.json$/, action: { drop: 'after' } })
    await handle.renew()
    await handle.renew()
    expect(handle.lost.aborted).toBe(false)
    await handle.release()
    expect(server.requests.filter((r) => r.op === 'DeleteObject').at(-1)!.status).toBe(204)
  })

  it('reads If-Match on a missing lock as "not ours" whether the server says 404 (AWS) or 412 (Ceph)', async () => {
    for (const answer of [undefined, { status: 412, code: 'PreconditionFailed' }]) {
      const { server, storage, raw, bucket } = await ownServer()
      const s = storage()
      const handle = (await s.tryLock('n', { ttlMs: 10_000 }))!
      await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: lockKey(s.prefix, 'n') }))
      if (answer) server.inject({ op: 'PutObject', key: /\.locks\/n\.json$/, action: answer })
      await expect(handle.renew()).rejects.toMatchObject({ code: 'ERR_ACME_LOCK_LOST' })
      expect(server.requests.filter((r) => r.op === 'PutObject').at(-1)!.status).toBe(answer ? 412 : 404)
      await handle.release()
    }
  })

  it('a late release after a takeover leaves the new holder alone (412), and release is idempotent', async () => {
    const { storage, write, read } = await ownServer()
    const a = storage()
    const b = storage({ prefix: a.prefix })
    const old = (await a.tryLock('n', { ttlMs: 10_000 }))!
    // someone else's lock replaces ours (as after a stale takeover)
    await write(lockKey(a.prefix, 'n'), JSON.stringify({ token: 'other', seq: 0, ttlMs: 60_000 }))
    await old.release()
    await old.release()
    expect(body((await read(lockKey(a.prefix, 'n'))).text).token).toBe('other')
    expect(await b.tryLock('n')).toBeNull()
  })

  it('a waiting lock() gets a released lock within the poll interval, and aborting a wait leaves nothing behind', async () => {
    const { storage, keys } = await ownServer()
    const a = storage()
    const b = storage({ prefix: a.prefix, pollMs: 100 })
    const held = await a.lock('n', { ttlMs: 10_000 })
    const waiting = b.lock('n', { ttlMs: 10_000 })
    await sleep(300)
    const released = Date.now()
    await held.release()
    const got = await waiting
    expect(Date.now() - released).toBeLessThan(400)
    const controller = new AbortController()
    const aborted = a.lock('n', { signal: controller.signal })
    await sleep(150)
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_ACME_ABORTED' })
    await got.release()
    expect((await keys()).filter((k) => k.endsWith('.json'))).toEqual([])
  })

  it('encodes hostile lock names into distinct objects that stay inside <prefix>/.locks/', async () => {
    const { storage, keys } = await ownServer()
    const s = storage()
    const names = ['*.example.com', '..', '/', 'a/b', 'a~2fb', 'ünïcödé', '../../escape']
    const handles = await Promise.all(names.map((n) => s.tryLock(n, { ttlMs: 10_000 })))
    expect(handles.every((h) => h !== null)).toBe(true)
    const locks = (await keys()).filter((k) => k.endsWith('.json'))
    expect(locks).toHaveLength(names.length)
    for (const k of locks) expect(k).toMatch(new RegExp(`^${s.prefix}/\\.locks/[a-z0-9_.~-]+\\.json$`))
    await Promise.all(handles.map((h) => h!.release()))
  })
})

describe('s3 locks: lease timing', () => {
  it('times the first lease from the start of the last acquiring write: a slow reply does not push lost past the server\'s lease', async () => {
    const { server, bucket } = await ownServer()
    const client = new S3Client({ ...server.clientConfig(), maxAttempts: 1 })
    onTestFinished(() => client.destroy())
    let slow = false
    let dead = false
    let lastLockPutAt = 0
    client.middlewareStack.add((next) => async (args) => {
      if (dead) throw Object.assign(new Error('partitioned'), { code: 'ECONNRESET' })
      const request = args.request as { method?: string, path?: string }
      if (request.method === 'PUT' && request.path?.endsWith('/n.json')) lastLockPutAt = Date.now()
      const out = await next(args)
      if (slow) await sleep(500) // applied; the answer is slow
      return out
    }, { step: 'finalizeRequest', name: 'slowAnswers' })
    const s = storageOn(server.clientConfig(), bucket, { client, retries: 0 })
    await s.probe()
    slow = true
    const handle = (await s.tryLock('n', { ttlMs: 1200 }))!
    slow = false
    dead = true // partitioned right after acquiring: no renewal gets through
    const lostAt = await new Promise<number>((resolve) => {
      if (handle.lost.aborted) resolve(Date.now())
      handle.lost.addEventListener('abort', () => resolve(Date.now()))
    })
    // the server counts the lease from that last write (or later); the holder must not outlast it
    expect(lostAt - lastLockPutAt).toBeLessThanOrEqual(1200 + 50)
    dead = false
    await handle.release()
  })

  it('refuses a lease longer than Node timers can count (2^31-1 ms), naming it, and writes no lock', async () => {
    const { storage, keys } = await ownServer()
    const s = storage()
    await expect(s.tryLock('n', { ttlMs: 30 * 24 * 3600 * 1000 })).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(/"ttlMs".*got 2592000000/) })
    expect(await keys()).toEqual([])
  })
})

describe('s3 locks: staleness by the server clock', () => {
  it('takes over a dead holder\'s lock after its TTL by the server clock, not before', async () => {
    const { storage, write } = await ownServer()
    const s = storage()
    await s.probe()
    await write(lockKey(s.prefix, 'n'), JSON.stringify({ token: 'dead', seq: 0, ttlMs: 1000 }))
    const written = Date.now()
    let handle = null
    while (handle === null) {
      handle = await s.tryLock('n', { ttlMs: 10_000 })
      if (handle === null) await sleep(25)
    }
    const after = Date.now() - written
    expect(after).toBeGreaterThanOrEqual(1000)
    expect(after).toBeLessThan(3100)
    await handle.release()
  })

  // The shared server runs in vitest's main process: faking this process's clock leaves the server's alone.
  const skewed = async (deadTtlMs: number) => {
    const config = services().s3
    const bucket = randomName('s3-clock')
    await createBucket(config, bucket)
    const s = storageOn(config, bucket)
    await s.probe()
    const raw = new S3Client(config)
    onTestFinished(() => raw.destroy())
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: lockKey(s.prefix, 'n'), Body: JSON.stringify({ token: 'dead', seq: 0, ttlMs: deadTtlMs }) }))
    return s
  }

  it('does not take over early when the contender\'s clock runs 10 minutes ahead', async () => {
    const s = await skewed(5000)
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 10 * 60_000 })
    try {
      for (let i = 0; i < 5; i++) {
        expect(await s.tryLock('n', { ttlMs: 10_000 })).toBeNull()
        await sleep(100)
      }
    } finally {
      vi.useRealTimers()
    }
  })

  it('takes over on time when the contender\'s clock runs 10 minutes behind', async () => {
    const s = await skewed(500)
    const written = Date.now()
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 10 * 60_000 })
    let handle = null
    try {
      while (handle === null) {
        handle = await s.tryLock('n', { ttlMs: 60_000 })
        if (handle === null) await sleep(25)
      }
    } finally {
      vi.useRealTimers()
    }
    const after = Date.now() - written
    expect(after).toBeGreaterThanOrEqual(500)
    expect(after).toBeLessThan(2600)
    await handle.release()
  }, 10_000)
})

describe('s3 locks: servers without conditional DELETE', () => {
  it('releases with a tombstone that the next acquirer takes over at once', async () => {
    const { server, storage, read } = await ownServer({ noConditionalDelete: true })
    const a = storage()
    const b = storage({ prefix: a.prefix })
    expect(await a.probe()).toEqual({ conditionalDelete: false })
    const held = (await a.tryLock('n', { ttlMs: 60_000 }))!
    await held.release()
    const tomb = body((await read(lockKey(a.prefix, 'n'))).text)
    expect(tomb).toMatchObject({ token: held.token, released: true })
    const started = Date.now()
    const next = (await b.tryLock('n', { ttlMs: 60_000 }))!
    expect(next).not.toBeNull()
    expect(Date.now() - started).toBeLessThan(500)
    expect(next.fence).toBeGreaterThan(held.fence)
    await next.release()
    // no delete of a lock object ever went out, conditional or not
    expect(server.requests.filter((r) => r.op === 'DeleteObject' && r.key.endsWith('n.json'))).toEqual([])
  })

  it('falls back to a tombstone when DELETE If-Match is refused at release time (probe skipped by a changed server)', async () => {
    const { server, storage, read } = await ownServer()
    const s = storage()
    const held = (await s.tryLock('n', { ttlMs: 60_000 }))!
    server.inject({ op: 'DeleteObject', key: /\.locks\/n\.json$/, action: { status: 501, code: 'NotImplemented' } })
    await held.release()
    expect(body((await read(lockKey(s.prefix, 'n'))).text)).toMatchObject({ released: true })
    const again = (await s.tryLock('n'))!
    expect(again).not.toBeNull()
    await again.release()
  })
})

describe('s3 locks: eventual consistency', () => {
  it('stays exclusive when reads lag writes by 300 ms (decisions come from conditional writes)', async () => {
    const { storage } = await ownServer({ staleReadMs: 300 })
    const first = storage({ pollMs: 20 })
    const same = [first, storage({ prefix: first.prefix, pollMs: 20 }), storage({ prefix: first.prefix, pollMs: 20 })]
    let inside = 0
    let maxInside = 0
    const fences: number[] = []
    await Promise.all(same.map(async (s) => {
      for (let i = 0; i < 4; i++) {
        const h = await s.lock('n', { ttlMs: 10_000 })
        inside++
        maxInside = Math.max(maxInside, inside)
        fences.push(h.fence)
        await sleep(5)
        inside--
        await h.release()
      }
    }))
    expect(maxInside).toBe(1)
    expect(new Set(fences).size).toBe(12)
  }, 60_000)
})
