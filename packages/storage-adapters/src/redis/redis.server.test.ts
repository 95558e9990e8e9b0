import { startRedis, type RedisOptions, type RedisServer } from '@fastify-acme/harness'
import { describe, expect, it, onTestFinished } from 'vitest'
import { rawClient, sleep, storageOn, text, waitFor } from './redis.test-helpers.js'

/*
 * Each test starts its own redis-server (the harness kills it with the test process, even on a
 * crash) so it can be killed, frozen and restarted without disturbing the shared one.
 */
async function ownRedis (opts: RedisOptions = {}): Promise<RedisServer> {
  const server = await startRedis(opts)
  onTestFinished(async () => {
    server.service.kill('SIGCONT')
    await server.stop()
  })
  return server
}

describe('redis storage: restarts and outages', () => {
  it('with appendonly yes, data and a held lock survive kill -9 + restart, and the lease kept counting', async () => {
    const server = await ownRedis({ appendonly: true })
    const storage = storageOn(server.url)
    await storage.put('certificates/a/bundle.json', 'chain+key')
    const handle = (await storage.tryLock('issue/a', { ttlMs: 9000 }))!
    const raw = await rawClient(server.url)
    const lockKey = `{${storage.namespace}}:l:issue/a`
    const before = await raw.pTTL(lockKey)
    raw.destroy()

    await server.kill('SIGKILL')
    await sleep(700)
    await server.restart()

    const after = await rawClient(server.url)
    expect(await after.get(lockKey)).toBe(handle.token)
    expect(await after.pTTL(lockKey)).toBeLessThan(before - 600)
    expect(text(await storage.get('certificates/a/bundle.json'))).toBe('chain+key')
    expect(await storage.list('certificates', { recursive: true })).toEqual(['certificates/a/bundle.json'])
    await handle.renew()
    expect(await after.pTTL(lockKey)).toBeGreaterThan(8000)
    expect(handle.lost.aborted).toBe(false)

    await handle.release()
    const next = (await storage.tryLock('issue/a'))!
    expect(next.fence).toBeGreaterThan(handle.fence)
    await next.release()
  })

  it('with appendonly no, the holder learns at its next renewal that a restart forgot its lock', async () => {
    const server = await ownRedis({ appendonly: false })
    const storage = storageOn(server.url)
    await storage.put('a/b', 'v')
    const handle = (await storage.tryLock('issue/a', { ttlMs: 1500 }))!
    await server.kill('SIGKILL')
    await server.restart()
    await waitFor(() => handle.lost.aborted, 5000)
    expect((handle.lost.reason as Error).message).toMatch(/taken over or expired/)
    expect(await storage.get('a/b')).toBeNull()
    expect(storage.warnings.join('\n')).toMatch(/appendonly no/)
    // the lock is free again for everyone, and the old handle cannot free a new holder's lock
    const next = (await storage.tryLock('issue/a'))!
    await handle.release()
    const raw = await rawClient(server.url)
    expect(await raw.get(`{${storage.namespace}}:l:issue/a`)).toBe(next.token)
    await next.release()
  })

  it('keeps the lock through a Redis freeze shorter than the lease (renewals time out, then succeed)', async () => {
    const server = await ownRedis()
    const storage = storageOn(server.url, { commandTimeoutMs: 1000 })
    const handle = (await storage.tryLock('n', { ttlMs: 1800 }))!
    server.service.kill('SIGSTOP')
    await sleep(800)
    server.service.kill('SIGCONT')
    await sleep(1500)
    expect(handle.lost.aborted).toBe(false)
    const raw = await rawClient(server.url)
    expect(await raw.get(`{${storage.namespace}}:l:n`)).toBe(handle.token)
    await handle.release()
  })

  it('keeps the lock through a crash + restart shorter than the lease (appendonly yes)', async () => {
    const server = await ownRedis({ appendonly: true })
    const storage = storageOn(server.url)
    const handle = (await storage.tryLock('n', { ttlMs: 3000 }))!
    await server.kill('SIGKILL')
    await sleep(300)
    await server.restart()
    await sleep(2500)
    expect(handle.lost.aborted).toBe(false)
    const raw = await rawClient(server.url)
    expect(await raw.get(`{${storage.namespace}}:l:n`)).toBe(handle.token)
    expect(await raw.pTTL(`{${storage.namespace}}:l:n`)).toBeGreaterThan(1500)
    await handle.release()
  })

  it('fires lost when Redis stays unreachable for longer than the lease, and leaves no ghost lock', async () => {
    const server = await ownRedis()
    const storage = storageOn(server.url, { commandTimeoutMs: 1000 })
    const handle = (await storage.tryLock('n', { ttlMs: 900 }))!
    const frozen = Date.now()
    server.service.kill('SIGSTOP')
    await waitFor(() => handle.lost.aborted, 3000)
    const lostAfter = Date.now() - frozen
    expect(lostAfter).toBeLessThan(900 + 400)
    expect((handle.lost.reason as Error).message).toMatch(/no renewal|renewals failing/)
    await sleep(300)
    server.service.kill('SIGCONT')
    const raw = await rawClient(server.url)
    // the renewals queued during the freeze ran after the lease had expired: they extend nothing
    await sleep(200)
    expect(await raw.exists(`{${storage.namespace}}:l:n`)).toBe(0)
    const next = (await storage.tryLock('n'))!
    expect(next.fence).toBeGreaterThan(handle.fence)
    await next.release()
  })

  it('fires lost when Redis is down (killed) for longer than the lease', async () => {
    const server = await ownRedis({ appendonly: true })
    const storage = storageOn(server.url, { commandTimeoutMs: 500 })
    const handle = (await storage.tryLock('n', { ttlMs: 900 }))!
    await server.kill('SIGKILL')
    await waitFor(() => handle.lost.aborted, 3000)
    await server.restart()
    const raw = await rawClient(server.url)
    await waitFor(async () => await raw.exists(`{${storage.namespace}}:l:n`) === 0, 2000)
  })
})

describe('redis storage: startup warnings', () => {
  it('warns that allkeys-lru may evict certificates and locks', async () => {
    const server = await ownRedis({ appendonly: true, args: ['--maxmemory-policy', 'allkeys-lru'] })
    const storage = storageOn(server.url)
    const check = await storage.checkServer()
    expect(check).toMatchObject({ appendonly: 'yes', maxmemoryPolicy: 'allkeys-lru' })
    expect(storage.warnings).toEqual([expect.stringMatching(/maxmemory-policy is allkeys-lru.*certificates/)])
  })

  it('warns that appendonly no loses certificates and locks on a restart', async () => {
    const server = await ownRedis({ appendonly: false })
    const storage = storageOn(server.url)
    const check = await storage.checkServer()
    expect(check).toMatchObject({ appendonly: 'no', maxmemoryPolicy: 'noeviction' })
    expect(storage.warnings).toEqual([expect.stringMatching(/appendonly no: a crash or restart loses certificates .* forgets every lock/)])
  })

  it('warns that volatile-lru may evict held locks', async () => {
    const server = await ownRedis({ appendonly: true, args: ['--maxmemory-policy', 'volatile-lru'] })
    const storage = storageOn(server.url)
    await storage.get('a/b')
    await storage.checkServer()
    expect(storage.warnings).toEqual([expect.stringMatching(/volatile-lru.*evict held locks/)])
  })

  it('says nothing for appendonly yes + noeviction, and runs the check at the first operation', async () => {
    const server = await ownRedis({ appendonly: true })
    const storage = storageOn(server.url)
    await storage.put('a/b', 'v')
    expect(await storage.checkServer()).toEqual({ appendonly: 'yes', maxmemoryPolicy: 'noeviction', warnings: [] })
    expect(storage.warnings).toEqual([])
  })

  it('says it could not check when CONFIG is refused (managed Redis), and still works', async () => {
    const server = await ownRedis({ args: ['--rename-command', 'CONFIG', ''] })
    const storage = storageOn(server.url)
    await storage.put('a/b', 'v')
    expect(text(await storage.get('a/b'))).toBe('v')
    const check = await storage.checkServer()
    expect(check.appendonly).toBeUndefined()
    expect(storage.warnings).toEqual([expect.stringMatching(/could not check appendonly and maxmemory-policy/)])
  })

  it('can be turned off', async () => {
    const server = await ownRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] })
    const storage = storageOn(server.url, { checkServer: false })
    await storage.put('a/b', 'v')
    await sleep(50)
    expect(storage.warnings).toEqual([])
  })
})
