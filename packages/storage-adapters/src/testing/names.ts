import assert from 'node:assert/strict'
import { LockNames, StorageKeys } from '@fastify-acme/core'
import type { Suite } from './context.js'

/** Names an attacker or a careless caller may hand to core, which builds keys from them. */
export const HOSTILE_NAMES = [
  '*.example.com', 'example.com', 'EXAMPLE.com', 'Example.Com', '..', '.', '/', '//', 'a/../../b', '../../etc/passwd',
  '~', '~2a', '~2a.example.com', '.hidden', 'a b', 'a\\b', 'C:\\x', 'ünïcödé.example', 'xn--nxasmq6b.example', '日本.jp',
  '', '%2e%2e', 'a\u0000b', 'con', 'a:b', '-', '_',
]

/** Keys the contract forbids; every method must refuse each with ERR_ACME_STORAGE_KEY. */
export const INVALID_KEYS = [
  '', '../x', '/abs', 'a//b', 'a/', '.', '..', 'a/./b', 'a/../b', 'a\\b', 'a b', 'ü', 'a\u0000b', 'a:b', '*',
  'x'.repeat(1025),
]

const rejectsWithKeyError = async (fn: () => Promise<unknown>, what: string) => {
  await assert.rejects(fn, (err: { code?: string }) => {
    assert.equal(err.code, 'ERR_ACME_STORAGE_KEY', `${what}: expected ERR_ACME_STORAGE_KEY, got ${String(err)}`)
    return true
  }, `${what} was accepted`)
}

export function nameTests ({ test }: Suite): void {
  test('keys core builds from hostile names neither escape nor collide', async ({ open }) => {
    const s = await open()
    const keys = HOSTILE_NAMES.flatMap((n) => [StorageKeys.certificateBundle(n), StorageKeys.http01(n), StorageKeys.account(n, n)])
    assert.equal(new Set(keys).size, keys.length, 'core built the same key twice')
    for (const [i, key] of keys.entries()) await s.put(key, `value ${i}`)
    for (const [i, key] of keys.entries()) assert.equal(Buffer.from((await s.get(key))!).toString(), `value ${i}`, key)
    const listed = await s.list('certificates')
    assert.equal(listed.length, HOSTILE_NAMES.length)
    assert.deepEqual(listed, HOSTILE_NAMES.map((n) => StorageKeys.certificateDir(n)).sort())
    const all = [
      ...await s.list('certificates', { recursive: true }),
      ...await s.list('challenges', { recursive: true }),
      ...await s.list('accounts', { recursive: true }),
    ]
    assert.deepEqual(all.sort(), [...keys].sort())
  })

  test('namespaces do not see each other', async ({ open, openOther }) => {
    const [s, other] = [await open(), await openOther()]
    await s.put('certificates/x/bundle.json', 'mine')
    assert.equal(await other.get('certificates/x/bundle.json'), null)
    assert.deepEqual(await other.list('certificates', { recursive: true }), [])
    await other.put('certificates/x/bundle.json', 'theirs')
    await other.delete('certificates')
    assert.equal(Buffer.from((await s.get('certificates/x/bundle.json'))!).toString(), 'mine')
    const held = await s.tryLock('issue/x', { ttlMs: 10_000 })
    const theirs = await other.tryLock('issue/x', { ttlMs: 10_000 })
    assert.ok(held && theirs, 'a lock was shared across namespaces')
    await held.release()
    await theirs.release()
  })

  test('every method refuses an invalid key with ERR_ACME_STORAGE_KEY', async ({ open }) => {
    const s = await open()
    for (const key of INVALID_KEYS) {
      const what = JSON.stringify(key.length > 20 ? `${key.slice(0, 20)}...` : key)
      await rejectsWithKeyError(() => s.get(key), `get(${what})`)
      await rejectsWithKeyError(() => s.put(key, 'x'), `put(${what})`)
      await rejectsWithKeyError(() => s.delete(key), `delete(${what})`)
      await rejectsWithKeyError(() => s.list(key), `list(${what})`)
      await rejectsWithKeyError(() => s.list(key, { recursive: true }), `list(${what}, recursive)`)
      await rejectsWithKeyError(() => s.stat(key), `stat(${what})`)
    }
    await rejectsWithKeyError(() => s.get(42 as unknown as string), 'get(42)')
  })

  test('every allowed character and a 1024-character key work', async ({ open }) => {
    const s = await open()
    const odd = 'AZaz09._~@+=-'
    await s.put(`ok/${odd}/${odd}`, 'x')
    assert.deepEqual(await s.list(`ok/${odd}`), [`ok/${odd}/${odd}`])
    const head = Array.from({ length: 9 }, (_, i) => `${i}`.repeat(101)).join('/')
    const long = `${head}/${'z'.repeat(1024 - head.length - 1)}`
    assert.equal(long.length, 1024)
    await s.put(long, 'long')
    assert.equal(Buffer.from((await s.get(long))!).toString(), 'long')
    assert.equal((await s.list(long.slice(0, long.lastIndexOf('/')))).length, 1)
  })

  test('locks named by core from hostile names are distinct locks', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    const names = [...new Set(HOSTILE_NAMES.map((n) => LockNames.issue(n)))]
    assert.equal(names.length, HOSTILE_NAMES.length)
    const handles = []
    for (const name of names) {
      const handle = await a.tryLock(name, { ttlMs: 10_000 })
      assert.ok(handle, `lock ${name} was not free`)
      handles.push(handle)
    }
    for (const name of names) assert.equal(await b.tryLock(name), null, `lock ${name} was taken twice`)
    for (const h of handles) await h.release()
    const again = await b.tryLock(names[0]!)
    assert.ok(again, 'released lock not free')
    await again.release()
  })
}
