import assert from 'node:assert/strict'
import type { LockHandle } from '@fastify-acme/core'
import type { Suite } from './context.js'
import { sleep } from './values.js'

const settled = async (p: Promise<unknown>) => {
  let done = false
  p.then(() => { done = true }, () => { done = true })
  await sleep(0)
  return done
}

const assertCode = (code: string) => (err: { code?: string }) => {
  assert.equal(err.code, code, `expected ${code}, got ${String(err)}`)
  return true
}

/** Lock semantics with healthy holders: exclusion, hand-over, renewal, release, abort. */
export function lockTests (suite: Suite): void {
  const { test, multiProcess, lockPollMs } = suite
  const where = multiProcess ? 'processes' : 'instances'

  test('tryLock returns a handle when free and null at once when held', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    const h = await a.tryLock('t/one', { ttlMs: 10_000 })
    assert.ok(h)
    assert.equal(h.name, 't/one')
    assert.equal(typeof h.token, 'string')
    assert.ok(h.token.length > 0)
    assert.ok(Number.isSafeInteger(h.fence))
    assert.equal(h.lost.aborted, false)
    const started = Date.now()
    assert.equal(await b.tryLock('t/one'), null)
    assert.equal(await a.tryLock('t/one'), null, 'the same instance got the lock twice')
    assert.ok(Date.now() - started < 2000, 'tryLock waited')
    await h.release()
    const again = await b.tryLock('t/one')
    assert.ok(again, 'a released lock was not free')
    await again.release()
  })

  test('lock() waits while the lock is held and resolves once it is released', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    const first = await a.lock('w/one', { ttlMs: 10_000 })
    const waiting = b.lock('w/one', { ttlMs: 10_000 })
    await sleep(300)
    assert.equal(await settled(waiting), false, 'lock() resolved while the lock was held')
    await first.release()
    const second = await waiting
    assert.ok(second.fence > first.fence)
    await second.release()
  })

  test(`a waiter in another ${multiProcess ? 'process' : 'instance'} gets a released lock promptly (within 1.5 x poll interval + 500 ms)`, async ({ open, peers, ns }) => {
    const s = await open()
    const [peer] = await peers(1)
    const held = await s.lock('prompt', { ttlMs: 30_000 })
    const waiting = peer!.call('lock', { ns, name: 'prompt', ttlMs: 30_000 })
    await sleep(Math.max(400, lockPollMs * 2))
    assert.equal(await settled(waiting), false, 'the waiter got a held lock')
    const releasedAt = Date.now()
    await held.release()
    const got = await waiting
    const delay = got.after - releasedAt
    assert.ok(delay <= lockPollMs * 1.5 + 500, `waiter took ${delay} ms after release`)
    await peer!.call('release', { name: 'prompt' })
  })

  test(`mutual exclusion: 4 ${where} x 25 increments under the lock give 100, and no holder ever sees another`, async ({ open, peers, ns }) => {
    const s = await open()
    const workers = await peers(4)
    const keys = { lockName: 'mutex/counter', counterKey: 'mutex/count', markerKey: 'mutex/occupied', iterations: 25 }
    const results = await Promise.all(workers.map((w, i) => w.call('counter', { ns, id: `w${i}`, ...keys })))
    assert.equal(Buffer.from((await s.get(keys.counterKey))!).toString(), '100')
    assert.deepEqual(results.map((r) => r.violations), [0, 0, 0, 0], 'two holders at once')
    const fences = results.flatMap((r) => r.fences)
    assert.equal(new Set(fences).size, 100, 'a fence was handed out twice')
    for (const r of results) for (let i = 1; i < r.fences.length; i++) assert.ok(r.fences[i]! > r.fences[i - 1]!)
    assert.equal(await s.get(keys.markerKey), null)
  }, 60_000)

  test('tokens are unique and fences strictly increase across acquisitions, instances and takeovers', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    const handles: LockHandle[] = []
    for (let i = 0; i < 3; i++) {
      const h = await a.lock('fence', { ttlMs: 10_000 })
      handles.push(h)
      await h.release()
    }
    const fromB = await b.lock('fence', { ttlMs: 10_000 })
    handles.push(fromB)
    await fromB.release()
    const c = await open()
    // a lease this short lapses at the handle's first renewal tick: the lock is left stale
    const stale = await c.lock('fence', { ttlMs: 5 })
    handles.push(stale)
    await new Promise((resolve) => stale.lost.addEventListener('abort', resolve))
    await sleep(50 + suite.staleSlackMs)
    const takeover = await a.lock('fence', { ttlMs: 10_000 })
    handles.push(takeover)
    await takeover.release()
    const fences = handles.map((h) => h.fence)
    for (let i = 1; i < fences.length; i++) assert.ok(fences[i]! > fences[i - 1]!, `fences ${fences.join(', ')}`)
    assert.equal(new Set(handles.map((h) => h.token)).size, handles.length, 'a token was reused')
  })

  test('a handle renews its lease by itself: an 800 ms lease held for 2.5 s stays held', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    const h = await a.lock('renewing', { ttlMs: 800 })
    for (let i = 0; i < 10; i++) {
      await sleep(250)
      assert.equal(await b.tryLock('renewing', { ttlMs: 800 }), null, `taken over after ${(i + 1) * 250} ms`)
    }
    assert.equal(h.lost.aborted, false, 'lost fired on a healthy holder')
    await h.renew()
    await h.release()
  })

  test('renew() extends a held lock and rejects with ERR_ACME_LOCK_LOST once released', async ({ open }) => {
    const s = await open()
    const h = await s.lock('renew', { ttlMs: 10_000 })
    await h.renew()
    await h.renew()
    await h.release()
    await assert.rejects(() => h.renew(), assertCode('ERR_ACME_LOCK_LOST'))
  })

  test('release() twice, or after someone else acquired, does not free the new holder', async ({ open }) => {
    const [a, b, c] = [await open(), await open(), await open()]
    const first = await a.lock('rel', { ttlMs: 10_000 })
    await first.release()
    const second = await b.lock('rel', { ttlMs: 10_000 })
    await first.release()
    assert.equal(await c.tryLock('rel'), null, 'a stale release freed the new holder')
    await second.renew()
    assert.equal(second.lost.aborted, false)
    await second.release()
    await second.release()
    const third = await c.tryLock('rel')
    assert.ok(third)
    await third.release()
  })

  test('abort while waiting rejects with ERR_ACME_ABORTED within 100 ms and leaves no lock behind', async ({ open }) => {
    const [a, b, c] = [await open(), await open(), await open()]
    const held = await a.lock('abort', { ttlMs: 10_000 })
    const controller = new AbortController()
    const waiting = b.lock('abort', { ttlMs: 10_000, signal: controller.signal })
    let rejectedAt = 0
    waiting.catch(() => { rejectedAt = Date.now() })
    await sleep(300)
    const abortedAt = Date.now()
    controller.abort()
    await assert.rejects(waiting, assertCode('ERR_ACME_ABORTED'))
    assert.ok(rejectedAt - abortedAt <= 100, `rejected ${rejectedAt - abortedAt} ms after abort`)
    await held.release()
    const free = await c.tryLock('abort')
    assert.ok(free, 'the aborted waiter left a lock behind')
    await free.release()
  })

  test('lock() with an already aborted signal rejects with ERR_ACME_ABORTED and takes nothing', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    await assert.rejects(a.lock('pre', { signal: AbortSignal.abort() }), assertCode('ERR_ACME_ABORTED'))
    const h = await b.tryLock('pre')
    assert.ok(h, 'the lock was taken')
    await h.release()
  })

  test('close(), where the adapter has it, releases the locks it holds', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    const h = await a.lock('closing', { ttlMs: 30_000 })
    if (!a.close) {
      await h.release()
      return
    }
    await a.close()
    const got = await b.tryLock('closing')
    assert.ok(got, 'close() left the lock held')
    await got.release()
  })

  test('close() also releases a lock whose acquisition was in flight, and refuses new ones', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    if (!a.close) return
    const inFlight = a.tryLock('closing-race', { ttlMs: 30_000 })
    await a.close()
    await inFlight.catch(() => null) // taken then released, or refused: either way not held
    await assert.rejects(a.tryLock('closing-late'), assertCode('ERR_ACME_CLOSED'))
    const got = await b.tryLock('closing-race')
    assert.ok(got, 'a lock acquired while the storage closed outlived close()')
    await got.release()
  })
}
