import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import type { LockHandle } from '@fastify-acme/core'
import type { Suite } from './context.js'
import { sleep } from './values.js'

const TTL = 1500

const lostWithin = (handle: LockHandle, ms: number) => Promise.race([
  new Promise<boolean>((resolve) => {
    if (handle.lost.aborted) resolve(true)
    handle.lost.addEventListener('abort', () => resolve(true))
  }),
  sleep(ms).then(() => false),
])

/** Lock behaviour when holders crash or stall, and the stale-takeover race. */
export function lockFailureTests (suite: Suite): void {
  const { test, multiProcess, staleSlackMs, raceRounds } = suite

  if (multiProcess) {
    test(`SIGKILL of the holder: another process takes over after the TTL (${TTL} ms), not before, not much after`, async ({ open, peers, ns }) => {
      const s = await open()
      const [holder] = await peers(1)
      const got = await holder!.call('lock', { ns, name: 'crash', ttlMs: TTL })
      await holder!.kill()
      // the lease started between got.before and got.after; no renewal ran before the kill
      let taken: LockHandle | null = null
      while (!taken) {
        taken = await s.tryLock('crash', { ttlMs: 10_000 })
        if (!taken) await sleep(25)
      }
      const at = Date.now()
      assert.ok(at >= got.before + TTL, `taken over ${got.before + TTL - at} ms before the TTL ended`)
      const latest = got.after + TTL + staleSlackMs + 1000
      assert.ok(at <= latest, `taken over ${at - got.after - TTL} ms after the TTL ended`)
      assert.ok(taken.fence > got.fence)
      await taken.release()
    }, 20_000)

    test('a holder whose event loop stalls past the TTL is taken over; `lost` fires on its next tick and its late release is a no-op', async ({ open, peers, ns, scratch }) => {
      const [s, other] = [await open(), await open()]
      const [holder] = await peers(1)
      const got = await holder!.call('lock', { ns, name: 'stall', ttlMs: TTL })
      const resumeFile = scratch('resume')
      const stalled = holder!.call('stall', { name: 'stall', resumeFile, maxMs: 15_000, graceMs: 2000 })
      const taken = await s.lock('stall', { ttlMs: 10_000 })
      const at = Date.now()
      writeFileSync(resumeFile, '')
      assert.ok(at >= got.before + TTL, `taken over ${got.before + TTL - at} ms before the TTL ended`)
      const r = await stalled
      assert.ok(r.stalledMs >= TTL - 100, `the holder stalled only ${r.stalledMs} ms`)
      assert.equal(r.code, 'ERR_ACME_LOCK_LOST')
      assert.ok(r.lostAfterMs !== null && r.lostAfterMs <= TTL / 3 + 250, `lost fired ${r.lostAfterMs} ms after the stall ended`)
      assert.equal(r.releaseError, null)
      await taken.renew()
      assert.equal(taken.lost.aborted, false, 'the late release took the lock from the new holder')
      assert.equal(await other.tryLock('stall'), null, 'the late release freed the lock')
      assert.ok(taken.fence > got.fence)
      await taken.release()
    }, 30_000)
  } else {
    test('a holder whose event loop stalls past the TTL is taken over; `lost` fires on its next tick and its late release is a no-op', async ({ open }) => {
      const [a, b, c] = [await open(), await open(), await open()]
      const h = await a.lock('stall', { ttlMs: 300 })
      const started = Date.now()
      while (Date.now() - started < 500 + staleSlackMs) { /* a stalled event loop: no renewal can run */ }
      const taken = await b.tryLock('stall', { ttlMs: 10_000 })
      assert.ok(taken, 'a lock not renewed for longer than its TTL was not free')
      assert.equal(await lostWithin(h, 350), true, 'lost did not fire')
      assert.equal((h.lost.reason as { code?: string }).code, 'ERR_ACME_LOCK_LOST')
      await h.release()
      assert.equal(await c.tryLock('stall'), null, 'the late release freed the lock')
      await taken.renew()
      assert.ok(taken.fence > h.fence)
      await taken.release()
    })
  }

  test(`8 contenders racing for a stale lock: exactly one winner, ${raceRounds} rounds`, async ({ open, peers, ns }) => {
    const names = Array.from({ length: raceRounds }, (_, i) => `race/${i}`)
    const contenders = await peers(8)
    let staleFences: number[]
    if (multiProcess) {
      // a holder that dies: every lock is left behind, stale once its TTL has run out
      const [holder] = await peers(1)
      const r = await holder!.call('lockMany', { ns, names, ttlMs: 500 })
      await holder!.kill()
      staleFences = r.fences
      await sleep(500 + 50 + staleSlackMs)
    } else {
      const s = await open()
      const handles: LockHandle[] = []
      // leases this short lapse at the handles' first renewal tick
      for (const name of names) handles.push(await s.lock(name, { ttlMs: 5 }))
      await Promise.all(handles.map((h) => lostWithin(h, 1000)))
      await sleep(50 + staleSlackMs)
      staleFences = handles.map((h) => h.fence)
    }
    // winners keep their locks (each round has its own name); closing the peers releases them
    for (const [round, name] of names.entries()) {
      const at = Date.now() + 3
      const results = await Promise.all(contenders.map((c) => c.call('tryLock', { ns, name, ttlMs: 30_000, at })))
      const winners = results.flatMap((r, i) => r.won ? [i] : [])
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`)
      assert.ok(results[winners[0]!]!.fence! > staleFences[round]!, `round ${round}: fence did not increase`)
    }
  }, 60_000)
}
