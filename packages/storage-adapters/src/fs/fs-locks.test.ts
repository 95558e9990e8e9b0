import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, it } from 'vitest'
import { fsStorage } from './index.js'
import { claimGeneration, generationName, generations, newRecord, releaseLockFile, renewLockFile } from './lock-file.js'

const base = mkdtempSync(join(tmpdir(), 'fs-storage-locks-'))
afterAll(() => rmSync(base, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }))
let n = 0
const freshDir = () => join(base, `t${n++}`)
const readRecord = async (path: string) => JSON.parse(await fs.readFile(path, 'utf8'))

describe('fsStorage locks', () => {
  it('refuses a lease longer than Node timers can count (2^31-1 ms), before writing anything', async () => {
    const dir = freshDir()
    assert.throws(() => fsStorage({ dir, lockTtlMs: 2 ** 31 }), { code: 'ERR_ACME_INVALID_OPTION', message: /"lockTtlMs".*got 2147483648/ })
    const s = fsStorage({ dir })
    await assert.rejects(s.tryLock!('long', { ttlMs: 2 ** 31 }), { code: 'ERR_ACME_INVALID_OPTION', message: /"ttlMs".*got 2147483648/ })
    assert.deepEqual(await generations(join(dir, '#locks', 'long')), [])
    await s.close!()
  })

  it('keeps locks outside the key space: a lock and a key of the same name are independent', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    const h = await s.lock('locks/x')
    await s.put('locks/x', 'a value')
    assert.deepEqual(await s.list('locks', { recursive: true }), ['locks/x'])
    await s.delete('locks')
    assert.equal(await s.tryLock('locks/x'), null, 'deleting keys freed a lock')
    assert.deepEqual(readdirSync(join(dir, '#locks', 'locks', 'x')), [generationName(h.fence)])
    await h.release()
  })

  it('writes the lock record as JSON { token, owner: { host, pid }, fence, heartbeatAt, ttlMs }', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    const before = Date.now()
    const h = await s.lock('issue/r', { ttlMs: 12_345 })
    const record = await readRecord(join(dir, '#locks', 'issue', 'r', generationName(h.fence)))
    assert.deepEqual({ ...record, heartbeatAt: 0 }, { token: h.token, owner: { host: hostname(), pid: process.pid }, fence: h.fence, heartbeatAt: 0, ttlMs: 12_345 })
    assert.ok(record.heartbeatAt >= before && record.heartbeatAt <= Date.now())
    await new Promise((resolve) => setTimeout(resolve, 20))
    await h.renew()
    const renewed = await readRecord(join(dir, '#locks', 'issue', 'r', generationName(h.fence)))
    assert.ok(renewed.heartbeatAt > record.heartbeatAt, 'renew did not move the heartbeat')
    assert.equal(renewed.token, h.token)
    await h.release()
  })

  it('release marks the newest generation released and keeps it: the fence survives a restart', async () => {
    const dir = freshDir()
    const first = await fsStorage({ dir }).lock('f')
    await first.release()
    const lockDir = join(dir, '#locks', 'f')
    assert.deepEqual(readdirSync(lockDir), [generationName(first.fence)])
    assert.equal((await readRecord(join(lockDir, generationName(first.fence)))).released, true)
    const second = await fsStorage({ dir }).lock('f')
    assert.equal(second.fence, first.fence + 1)
    assert.deepEqual(readdirSync(lockDir), [generationName(second.fence)], 'older generation not pruned')
    await second.release()
  })

  it('release and renew with a token that is not the holder\'s change nothing', async () => {
    const dir = freshDir()
    const h = await fsStorage({ dir }).lock('t', { ttlMs: 30_000 })
    const lockDir = join(dir, '#locks', 't')
    const path = join(lockDir, generationName(h.fence))
    const before = await fs.readFile(path, 'utf8')
    await releaseLockFile(lockDir, h.fence, 'someone-else')
    assert.equal(await renewLockFile(lockDir, h.fence, 'someone-else', 30_000), false)
    await releaseLockFile(lockDir, h.fence + 1, h.token)
    assert.equal(await fs.readFile(path, 'utf8'), before)
    assert.equal(await fsStorage({ dir }).tryLock('t'), null)
    assert.equal(await renewLockFile(lockDir, h.fence, h.token, 30_000), true)
    await h.release()
  })

  it('a renewal finds a newer generation and reports the lease lost', async () => {
    const dir = freshDir()
    const h = await fsStorage({ dir }).lock('newer', { ttlMs: 30_000 })
    const lockDir = join(dir, '#locks', 'newer')
    writeFileSync(join(lockDir, generationName(h.fence + 1)), JSON.stringify(newRecord('intruder', h.fence + 1, 30_000)))
    await assert.rejects(h.renew(), (err: { code?: string }) => err.code === 'ERR_ACME_LOCK_LOST')
    assert.equal(h.lost.aborted, true)
  })

  it('a contender re-creating an already pruned generation backs off (no ABA) and removes its file', async () => {
    const dir = freshDir()
    const lockDir = join(dir, '#locks', 'aba')
    mkdirSync(lockDir, { recursive: true })
    assert.equal(await claimGeneration(lockDir, 5, newRecord('holder', 5, 30_000)), true)
    // a contender that listed the directory long ago, when 3 was the newest, claims 4
    assert.equal(await claimGeneration(lockDir, 4, newRecord('late', 4, 30_000)), false)
    assert.deepEqual(await generations(lockDir), [5])
    assert.equal(await claimGeneration(lockDir, 5, newRecord('same', 5, 30_000)), false, 'an existing generation was claimed twice')
    assert.equal((await readRecord(join(lockDir, generationName(5)))).token, 'holder')
  })

  it('never shows a reader an empty or partial lock record during 2000 renewals', async () => {
    const dir = freshDir()
    const h = await fsStorage({ dir }).lock('torn', { ttlMs: 60_000 })
    const lockDir = join(dir, '#locks', 'torn')
    const path = join(lockDir, generationName(h.fence))
    const race = { stop: false }
    let reads = 0
    const bad: string[] = []
    const readers = Array.from({ length: 2 }, async () => {
      while (!race.stop) {
        try {
          const record = JSON.parse(await fs.readFile(path, 'utf8'))
          if (record.token !== h.token) bad.push('foreign token')
        } catch (err) {
          bad.push(String(err))
        }
        reads++
      }
    })
    for (let i = 0; i < 2000; i++) assert.equal(await renewLockFile(lockDir, h.fence, h.token, 60_000), true)
    race.stop = true
    await Promise.all(readers)
    assert.deepEqual(bad.slice(0, 5), [])
    assert.ok(reads >= 2000, `only ${reads} reads raced the renewals`)
    await h.release()
  }, 30_000)

  it('a lock file that is not a record counts as held until lockTtlMs after its mtime', async () => {
    const dir = freshDir()
    const lockDir = join(dir, '#locks', 'garbage')
    mkdirSync(lockDir, { recursive: true })
    const path = join(lockDir, generationName(7))
    writeFileSync(path, '\u0000\u0000not json')
    const s = fsStorage({ dir, lockTtlMs: 5000 })
    assert.equal(await s.tryLock('garbage'), null)
    const old = new Date(Date.now() - 6000)
    utimesSync(path, old, old)
    const h = await s.tryLock('garbage')
    assert.ok(h)
    assert.equal(h.fence, 8)
    await h.release()
  })

  it('a release wakes waiters of the same process at once, without waiting for the poll interval', async () => {
    const dir = freshDir()
    const [a, b] = [fsStorage({ dir, lockPollMs: 10_000 }), fsStorage({ dir, lockPollMs: 10_000 })]
    const h = await a.lock('wake')
    const waiting = b.lock('wake')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const released = Date.now()
    await h.release()
    const got = await waiting
    assert.ok(Date.now() - released < 200, `woke after ${Date.now() - released} ms`)
    await got.release()
  })

  it('close() releases the locks it holds, stops their renewal, and can be called twice', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    const handles = [await s.lock('c/1'), await s.lock('c/2')]
    await s.close!()
    await s.close!()
    assert.ok(handles.every((h) => h.lost.aborted))
    const other = fsStorage({ dir })
    for (const name of ['c/1', 'c/2']) {
      const h = await other.tryLock(name)
      assert.ok(h, `${name} still held after close()`)
      await h.release()
    }
  })

  it('refuses lock names that are not keys with ERR_ACME_STORAGE_KEY', async () => {
    const s = fsStorage({ dir: freshDir() })
    for (const name of ['../escape', '/abs', 'a//b', '', '#locks']) {
      await assert.rejects(s.lock(name), (err: { code?: string }) => err.code === 'ERR_ACME_STORAGE_KEY', name)
      await assert.rejects(s.tryLock(name), (err: { code?: string }) => err.code === 'ERR_ACME_STORAGE_KEY', name)
    }
    // the rejections come before the storage's directory exists: close() waits for it, or it
    // could appear under the afterAll's rmSync (which lists a directory once, then only retries rmdir)
    await s.close!()
  })
})
