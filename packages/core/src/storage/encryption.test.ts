import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'vitest'
import { storageContract } from '../../../storage-adapters/src/testing/index.js'
import type { Storage } from './contract.js'
import { ENCRYPTION_OVERHEAD, encryptedStorage, parseEncryptionKeys } from './encryption.js'
import { memoryStorage } from './memory.js'

const oldKey = { id: 'k-2024', key: randomBytes(32) }
const newKey = { id: 'k-2025.rotated', key: randomBytes(32) }

const rejectsCorrupt = (p: Promise<unknown>, why: string) =>
  assert.rejects(p, (err: { code?: string }) => {
    assert.equal(err.code, 'ERR_ACME_STORAGE_CORRUPT', `${why}: ${String(err)}`)
    return true
  }, why)

const rejectsOption = (fn: () => unknown) =>
  assert.throws(fn, (err: { code?: string }) => err.code === 'ERR_ACME_INVALID_OPTION')

describe('encryptedStorage', () => {
  it('round-trips strings, binary and empty values, and stores no plaintext', async () => {
    const inner = memoryStorage()
    const s = encryptedStorage(inner, { keys: [oldKey] })
    const secret = '-----BEGIN PRIVATE KEY----- very secret'
    await s.put('certificates/a/bundle.json', secret)
    assert.equal(Buffer.from((await s.get('certificates/a/bundle.json'))!).toString(), secret)
    const raw = Buffer.from((await inner.get('certificates/a/bundle.json'))!)
    assert.equal(raw.includes(Buffer.from('very secret')), false, 'plaintext reached the inner storage')
    assert.equal(raw.length, Buffer.byteLength(secret) + ENCRYPTION_OVERHEAD)
    const binary = randomBytes(4096)
    await s.put('bin', binary)
    assert.ok(Buffer.from((await s.get('bin'))!).equals(binary))
    await s.put('empty', new Uint8Array(0))
    assert.equal((await s.get('empty'))!.byteLength, 0)
    assert.equal(await s.get('missing'), null)
  })

  it('encrypts the same value differently every time (fresh nonce)', async () => {
    const inner = memoryStorage()
    const s = encryptedStorage(inner, { keys: [oldKey] })
    await s.put('a', 'same')
    const first = Buffer.from((await inner.get('a'))!)
    await s.put('a', 'same')
    assert.equal(first.equals(Buffer.from((await inner.get('a'))!)), false)
  })

  it('rejects a value with any flipped byte (header, key id, nonce, tag, ciphertext) as ERR_ACME_STORAGE_CORRUPT', async () => {
    const inner = memoryStorage()
    const s = encryptedStorage(inner, { keys: [oldKey] })
    await s.put('v', 'a value worth protecting')
    const good = Buffer.from((await inner.get('v'))!)
    const positions = [0, 3, 4, 10, 36, 37, 48, 49, 64, 65, good.length - 1]
    for (const pos of positions) {
      const bad = Buffer.from(good)
      bad[pos]! ^= 0x01
      await inner.put('v', bad)
      await rejectsCorrupt(s.get('v'), `flipped byte ${pos}`)
    }
    await inner.put('v', good.subarray(0, good.length - 1))
    await rejectsCorrupt(s.get('v'), 'truncated')
    await inner.put('v', good.subarray(0, 20))
    await rejectsCorrupt(s.get('v'), 'shorter than a header')
    await inner.put('v', 'plain text someone wrote directly')
    await rejectsCorrupt(s.get('v'), 'not encrypted')
    await inner.put('v', good)
    assert.equal(Buffer.from((await s.get('v'))!).toString(), 'a value worth protecting')
  })

  it('says plainly that a value written before encryption was turned on is not encrypted, and never returns it', async () => {
    const inner = memoryStorage()
    await inner.put('certificates/a.com/bundle.json', '{"chain":"-----BEGIN CERTIFICATE-----"}')
    const s = encryptedStorage(inner, { keys: [oldKey] })
    await assert.rejects(s.get('certificates/a.com/bundle.json'), (err: { code?: string, message?: string }) => {
      assert.equal(err.code, 'ERR_ACME_STORAGE_CORRUPT')
      assert.match(err.message!, /value at "certificates\/a.com\/bundle.json" is not encrypted \(plaintext/)
      assert.match(err.message!, /was encryption turned on over an existing storage\?/)
      assert.doesNotMatch(err.message!, /BEGIN CERTIFICATE/)
      return true
    })
  })

  it('rejects a value copied under another key (the storage key is authenticated)', async () => {
    const inner = memoryStorage()
    const s = encryptedStorage(inner, { keys: [oldKey] })
    await s.put('certificates/evil.example/bundle.json', 'attacker bundle')
    await inner.put('certificates/bank.example/bundle.json', (await inner.get('certificates/evil.example/bundle.json'))!)
    await rejectsCorrupt(s.get('certificates/bank.example/bundle.json'), 'copied value')
  })

  it('reads old values after rotation (new key first, old second) and writes with the new key', async () => {
    const inner = memoryStorage()
    await encryptedStorage(inner, { keys: [oldKey] }).put('old', 'written before rotation')
    const rotated = encryptedStorage(inner, { keys: [newKey, oldKey] })
    assert.equal(Buffer.from((await rotated.get('old'))!).toString(), 'written before rotation')
    await rotated.put('new', 'written after rotation')
    assert.ok(Buffer.from((await inner.get('new'))!).includes(Buffer.from(newKey.id)), 'new value not under the new key id')
    await rejectsCorrupt(encryptedStorage(inner, { keys: [oldKey] }).get('new'), 'new key id unknown to an old keyring')
    await rejectsCorrupt(encryptedStorage(inner, { keys: [newKey] }).get('old'), 'old key dropped')
  })

  it('rejects a value when the key under its id is a different key', async () => {
    const inner = memoryStorage()
    await encryptedStorage(inner, { keys: [oldKey] }).put('x', 'secret')
    const impostor = encryptedStorage(inner, { keys: [{ id: oldKey.id, key: randomBytes(32) }] })
    await rejectsCorrupt(impostor.get('x'), 'wrong key material')
  })

  it('passes lock, tryLock, list, stat and delete through; stat reports the plaintext size', async () => {
    const inner = memoryStorage()
    const calls: string[] = []
    const spy: Storage = {
      ...inner,
      lock: (name, opts) => { calls.push(`lock ${name} ${opts?.ttlMs}`); return inner.lock(name, opts) },
      tryLock: (name, opts) => { calls.push(`tryLock ${name} ${opts?.ttlMs}`); return inner.tryLock(name, opts) },
    }
    const s = encryptedStorage(spy, { keys: [oldKey] })
    const h = await s.lock('issue/a', { ttlMs: 5000 })
    assert.equal(await inner.tryLock('issue/a'), null, 'the lock is not the inner storage lock')
    assert.equal(await s.tryLock('issue/a', { ttlMs: 7000 }), null)
    assert.deepEqual(calls, ['lock issue/a 5000', 'tryLock issue/a 7000'])
    await h.release()
    await s.put('d/x', '12345')
    await s.put('d/y/z', '1')
    assert.deepEqual(await s.list('d'), await inner.list('d'))
    assert.deepEqual(await s.list('d', { recursive: true }), ['d/x', 'd/y/z'])
    assert.equal((await s.stat('d/x'))!.size, 5)
    assert.equal((await s.stat('d'))!.isFile, false)
    await s.delete('d')
    assert.deepEqual(await inner.list('d', { recursive: true }), [])
  })

  it('refuses a bad keyring with ERR_ACME_INVALID_OPTION', () => {
    const inner = memoryStorage()
    rejectsOption(() => encryptedStorage(inner, { keys: [] }))
    rejectsOption(() => encryptedStorage(inner, undefined as never))
    rejectsOption(() => encryptedStorage(inner, { keys: [{ id: 'short', key: randomBytes(31) }] }))
    rejectsOption(() => encryptedStorage(inner, { keys: [{ id: 'x', key: 'a string' as never }] }))
    rejectsOption(() => encryptedStorage(inner, { keys: [{ id: '', key: randomBytes(32) }] }))
    rejectsOption(() => encryptedStorage(inner, { keys: [{ id: 'x'.repeat(33), key: randomBytes(32) }] }))
    rejectsOption(() => encryptedStorage(inner, { keys: [{ id: 'a b', key: randomBytes(32) }] }))
    rejectsOption(() => encryptedStorage(inner, { keys: [oldKey, { ...oldKey }] }))
  })

  it('reads a keyring from text (ACME_STORAGE_KEYS): base64 or base64url, first key first, never echoing a key', async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)]
    const keys = parseEncryptionKeys(` new:${k1.toString('base64url')} , old:${k2.toString('base64')}`)
    assert.deepEqual(keys.map((k) => [k.id, Buffer.from(k.key).toString('hex')]), [['new', k1.toString('hex')], ['old', k2.toString('hex')]])
    const inner = memoryStorage()
    await encryptedStorage(inner, { keys: [{ id: 'old', key: k2 }] }).put('a', 'value')
    assert.equal(Buffer.from((await encryptedStorage(inner, { keys }).get('a'))!).toString(), 'value')

    const secret = randomBytes(31).toString('base64')
    for (const bad of ['', ' , ', `k1${secret}`, `k1:${secret}`, `:${k1.toString('base64')}`, `a b:${k1.toString('base64')}`, `k1:${k1.toString('base64')}!`,
      `k1:${k1.toString('base64')},k1:${k2.toString('base64')}`]) {
      assert.throws(() => parseEncryptionKeys(bad), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_ACME_INVALID_OPTION', bad)
        assert.ok(!err.message.includes(secret) && !err.message.includes(k1.toString('base64')), `key echoed: ${err.message}`)
        return true
      })
    }
  })

  it('refuses invalid keys with ERR_ACME_STORAGE_KEY before encrypting', async () => {
    const s = encryptedStorage(memoryStorage(), { keys: [oldKey] })
    await assert.rejects(s.put('../x', 'v'), (err: { code?: string }) => err.code === 'ERR_ACME_STORAGE_KEY')
    await assert.rejects(s.get('/abs'), (err: { code?: string }) => err.code === 'ERR_ACME_STORAGE_KEY')
  })
})

const inners = new Map<string, Storage>()
storageContract({ describe, it }, {
  name: 'encryptedStorage(memoryStorage())',
  multiProcess: false,
  lockPollMs: 50,
  create: (ns) => {
    let inner = inners.get(ns)
    if (!inner) inners.set(ns, inner = memoryStorage())
    return encryptedStorage(inner, { keys: [newKey, oldKey] })
  },
})
