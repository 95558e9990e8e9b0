import assert from 'node:assert/strict'
import { describe, it } from 'vitest'
import { createLockHandle, pollForLock, type LeaseBackend } from './lease.js'

const lostAfter = (signal: AbortSignal, started: number) => new Promise<number>((resolve) => {
  signal.addEventListener('abort', () => resolve(Date.now() - started))
})

describe('createLockHandle', () => {
  it('fires lost at the TTL when a renewal hangs (a backend queueing commands while down)', async () => {
    const started = Date.now()
    const handle = createLockHandle({
      name: 'hang',
      token: 't',
      fence: 1,
      ttlMs: 300,
      backend: { renew: () => new Promise<boolean>(() => {}), release: async () => {} },
    })
    const ms = await Promise.race([lostAfter(handle.lost, started), new Promise<number>((resolve) => setTimeout(() => resolve(-1), 2000))])
    assert.ok(ms >= 290 && ms <= 600, `lost fired after ${ms} ms (ttl 300)`)
    assert.equal((handle.lost.reason as { code: string }).code, 'ERR_ACME_LOCK_LOST')
  })

  it('fires lost at the TTL, not a tick later, when renewals fail fast', async () => {
    const started = Date.now()
    const handle = createLockHandle({
      name: 'failing',
      token: 't',
      fence: 1,
      ttlMs: 1000,
      backend: { renew: async () => { throw new Error('backend down') }, release: async () => {} },
    })
    const ms = await lostAfter(handle.lost, started)
    // the lease runs from the handle's creation, a millisecond or so before `started`
    assert.ok(ms >= 990 && ms <= 1250, `lost fired after ${ms} ms (ttl 1000)`)
  })

  it('keeps the lock while renewals succeed, and renew() joins a renewal in flight', async () => {
    let calls = 0
    const backend: LeaseBackend = {
      renew: () => { calls++; return new Promise((resolve) => setTimeout(() => resolve(true), 30)) },
      release: async () => {},
    }
    const handle = createLockHandle({ name: 'ok', token: 't', fence: 1, ttlMs: 150, backend })
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(handle.lost.aborted, false)
    const before = calls
    await Promise.all([handle.renew(), handle.renew()])
    assert.ok(calls - before <= 1, `${calls - before} renewals for two overlapping renew() calls`)
    await handle.release()
    const after = calls
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(calls, after, 'renewed after release')
  })

  it('fires lost when the backend says the lease is gone; release() then only tries the guarded release, without throwing', async () => {
    let released = 0
    const handle = createLockHandle({
      name: 'gone',
      token: 't',
      fence: 1,
      ttlMs: 60,
      backend: { renew: async () => false, release: async () => { released++; throw new Error('not ours any more') } },
    })
    await lostAfter(handle.lost, Date.now())
    await assert.rejects(handle.renew(), (err: { code?: string }) => err.code === 'ERR_ACME_LOCK_LOST')
    await handle.release()
    await handle.release()
    assert.equal(released, 1)
  })

  it('counts the first lease from leaseStartedAt (acquire sent), not from when a slow reply arrived', async () => {
    // the acquire request went out 400 ms ago: the server's lease ends 200 ms from now
    const sentAt = Date.now() - 400
    const handle = createLockHandle({
      name: 'slow-reply',
      token: 't',
      fence: 1,
      ttlMs: 600,
      leaseStartedAt: sentAt,
      backend: { renew: () => new Promise<boolean>(() => {}), release: async () => {} },
    })
    const ms = await Promise.race([lostAfter(handle.lost, sentAt), new Promise<number>((resolve) => setTimeout(() => resolve(-1), 2000))])
    assert.ok(ms >= 590 && ms <= 700, `lost fired ${ms} ms after the acquire was sent (ttl 600)`)
  })

  it('renews at once when a slow acquire reply used up a third of the lease', async () => {
    let renewals = 0
    const handle = createLockHandle({
      name: 'late',
      token: 't',
      fence: 1,
      ttlMs: 3000,
      leaseStartedAt: Date.now() - 1500,
      backend: { renew: async () => { renewals++; return true }, release: async () => {} },
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(renewals, 1)
    assert.equal(handle.lost.aborted, false)
    await handle.release()
  })

  it('release() after a loss by the local deadline still frees the lease on the server (slow renewals may have landed)', async () => {
    let released = 0
    const handle = createLockHandle({
      name: 'slow-renewals',
      token: 't',
      fence: 1,
      ttlMs: 150,
      backend: { renew: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 400)), release: async () => { released++ } },
    })
    await lostAfter(handle.lost, Date.now())
    await handle.release()
    assert.equal(released, 1)
  })

  it('refuses a ttlMs that Node timers cannot count (over 2^31-1 ms), naming it, and frees the lease', async () => {
    let released = 0
    assert.throws(() => createLockHandle({
      name: 'month',
      token: 't',
      fence: 1,
      ttlMs: 30 * 24 * 3600 * 1000,
      backend: { renew: async () => true, release: async () => { released++ } },
    }), (err: { code?: string, message?: string }) => err.code === 'ERR_ACME_INVALID_OPTION' && /"ttlMs".*got 2592000000/.test(err.message ?? ''))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(released, 1)
  })
})

describe('pollForLock', () => {
  it('rejects at once when aborted during a slow attempt, and releases the lock that attempt still takes', async () => {
    let released = 0
    const handle = createLockHandle({ name: 'slow', token: 't', fence: 1, ttlMs: 10_000, backend: { renew: async () => true, release: async () => { released++ } } })
    const controller = new AbortController()
    const waiting = pollForLock('slow', () => new Promise((resolve) => setTimeout(() => resolve(handle), 400)), { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    const started = Date.now()
    await assert.rejects(waiting, { code: 'ERR_ACME_ABORTED' })
    assert.ok(Date.now() - started < 150, `rejected ${Date.now() - started} ms after the wait began (abort at 50 ms, attempt lands at 400 ms)`)
    assert.equal(released, 0)
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(released, 1, 'the late handle was released')
  })
})
