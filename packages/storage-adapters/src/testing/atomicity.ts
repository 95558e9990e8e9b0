import assert from 'node:assert/strict'
import type { Suite } from './context.js'
import type { Peer } from './peer.js'
import { MiB, makeValue, seedOf, sleep } from './values.js'

const KILL_ROUNDS = 20
const fromBase64 = (value: string | null) => value === null ? null : Buffer.from(value, 'base64').toString()

/** Read-after-write across instances, atomic puts under concurrent writers and under SIGKILL. */
export function atomicityTests (suite: Suite): void {
  const { test, multiProcess } = suite
  const where = multiProcess ? 'another process' : 'another instance'

  test(`read-after-write across instances: ${where} puts, this one reads at once, and back`, async ({ open, peers, ns }) => {
    const s = await open()
    const [peer] = await peers(1)
    for (let i = 0; i < 10; i++) {
      const value = `token ${i} ${'x'.repeat(i * 100)}`
      await peer!.call('put', { ns, key: 'challenges/http-01/t.json', value })
      assert.equal(Buffer.from((await s.get('challenges/http-01/t.json'))!).toString(), value)
      await s.put('challenges/http-01/u.json', value)
      assert.equal(fromBase64((await peer!.call('get', { ns, key: 'challenges/http-01/u.json' })).value), value)
    }
    await peer!.call('delete', { ns, key: 'challenges/http-01/t.json' })
    assert.equal(await s.get('challenges/http-01/t.json'), null)
    await s.delete('challenges/http-01/u.json')
    assert.equal((await peer!.call('get', { ns, key: 'challenges/http-01/u.json' })).value, null)
  })

  test(`concurrent 1 MiB puts to one key from 3 writers (${where}): every read is one whole value`, async ({ open, peers, ns }) => {
    const s = await open()
    const key = 'race/value'
    await s.put(key, makeValue(1, MiB))
    const writers = await peers(3)
    const starts = [1_000_000, 2_000_000, 3_000_000]
    await Promise.all(writers.map((w, i) => w.call('putLoop', { ns, key, seed: starts[i]!, size: MiB })))
    const until = Date.now() + 600
    let reads = 0
    while (Date.now() < until || reads < 20) {
      const [value, listed] = await Promise.all([s.get(key), s.list('race')])
      const seed = seedOf(value)
      assert.notEqual(seed, null, `read ${reads} returned ${value === null ? 'null' : `${value.byteLength} bytes that are no single write`}`)
      assert.deepEqual(listed, [key], 'list showed more than the key')
      reads++
      await new Promise(setImmediate)
    }
    const written = await Promise.all(writers.map((w) => w.call('stopLoop', { key })))
    for (const [i, w] of written.entries()) assert.ok(w.written > 0, `writer ${i} never completed a put`)
    const final = seedOf(await s.get(key))
    assert.ok(final !== null && written.some((w, i) => final >= starts[i]! && final < starts[i]! + w.written), `final value ${final} is not one of the writes`)
    assert.deepEqual(await s.list('race', { recursive: true }), [key])
  }, 30_000)

  test(`watch(), where the adapter has it, reports puts and deletes by ${where} under the prefix until stopped`, async ({ open, peers, ns }) => {
    const s = await open()
    if (!s.watch) return
    const [peer] = await peers(1)
    const seen: string[] = []
    const waitFor = async (key: string) => {
      for (let waited = 0; !seen.includes(key); waited += 20) {
        assert.ok(waited < 3000, `no change reported for ${key} (saw ${seen.join(', ') || 'nothing'})`)
        await sleep(20)
      }
      seen.length = 0
    }
    const stop = await s.watch('watched', (key) => seen.push(key))
    await peer!.call('put', { ns, key: 'watched/a/b', value: 'x' })
    await waitFor('watched/a/b')
    await peer!.call('delete', { ns, key: 'watched/a/b' })
    await waitFor('watched/a/b')
    await stop()
    await peer!.call('put', { ns, key: 'watched/after', value: 'x' })
    await sleep(300)
    assert.deepEqual(seen.filter((k) => k === 'watched/after'), [], 'reported a change after stop')
  })

  if (!multiProcess) return

  test(`writers SIGKILLed at random points of 1 MiB puts (${KILL_ROUNDS} rounds): a later get returns the old or the new value in full`, async ({ open, peers, ns }) => {
    const s = await open()
    const key = 'killed/value'
    let current = 7
    await s.put(key, makeValue(current, MiB))
    // start the next writers while the current round runs; each round needs a fresh process
    const ahead: Promise<Peer>[] = []
    const spawn = () => {
      const next = peers(1).then(([p]) => p!)
      next.catch(() => {})
      ahead.push(next)
    }
    for (let i = 0; i < 4; i++) spawn()
    let roundsWithNewValue = 0
    for (let round = 0; round < KILL_ROUNDS; round++) {
      const writer = await ahead.shift()!
      if (round + 4 < KILL_ROUNDS) spawn()
      const start = (round + 1) * 10_000
      await writer.call('putLoop', { ns, key, seed: start, size: MiB })
      await sleep(5 + Math.random() * 60)
      await writer.kill()
      const value = await s.get(key)
      const seed = seedOf(value)
      assert.notEqual(seed, null, `round ${round}: get returned ${value === null ? 'null' : `${value.byteLength} torn bytes`}`)
      assert.ok(seed === current || (seed! >= start && seed! < start + 10_000), `round ${round}: value ${seed} was never written`)
      if (seed !== current) roundsWithNewValue++
      current = seed!
      assert.deepEqual(await s.list('killed'), [key], `round ${round}: list shows a temporary file`)
      assert.deepEqual(await s.list('killed', { recursive: true }), [key], `round ${round}: recursive list shows a temporary file`)
    }
    assert.ok(roundsWithNewValue > 0, 'no writer ever completed a put before being killed')
    const reopened = await open()
    assert.equal(seedOf(await reopened.get(key)), current)
    assert.deepEqual(await reopened.list('killed', { recursive: true }), [key])
  }, 60_000)
}
