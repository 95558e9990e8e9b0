import assert from 'node:assert/strict'
import type { Suite } from './context.js'
import { MiB, makeValue, sleep } from './values.js'

const text = (bytes: Uint8Array | null) => bytes === null ? null : Buffer.from(bytes).toString('utf8')
const bytesEqual = (actual: Uint8Array | null, expected: Uint8Array) => {
  assert.ok(actual instanceof Uint8Array, `expected a Uint8Array, got ${actual === null ? 'null' : typeof actual}`)
  assert.equal(actual.byteLength, expected.byteLength)
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), 'bytes differ')
}

/** get/put/delete/list/stat, one test per sentence of the Storage interface. */
export function basicTests ({ test }: Suite): void {
  test('get returns null for a key that was never stored', async ({ open }) => {
    const s = await open()
    assert.equal(await s.get('missing'), null)
    assert.equal(await s.get('missing/deeper/still'), null)
  })

  test('get returns the bytes put stored, as a Uint8Array', async ({ open }) => {
    const s = await open()
    const value = new Uint8Array([1, 2, 3, 250, 0, 7])
    await s.put('a/b/value.bin', value)
    bytesEqual(await s.get('a/b/value.bin'), value)
  })

  test('put replaces any value, with no trace of a longer earlier value', async ({ open }) => {
    const s = await open()
    await s.put('k', 'a much longer first value than the second one')
    await s.put('k', 'short')
    assert.equal(text(await s.get('k')), 'short')
    assert.equal((await s.stat('k'))?.size, 5)
  })

  test('a string is stored as its UTF-8 bytes', async ({ open }) => {
    const s = await open()
    const value = 'héllo ✓ 🚀 \u0000 end'
    await s.put('utf8', value)
    bytesEqual(await s.get('utf8'), Buffer.from(value, 'utf8'))
  })

  test('an empty value is stored and read back as empty, not as missing', async ({ open }) => {
    const s = await open()
    await s.put('empty', new Uint8Array(0))
    bytesEqual(await s.get('empty'), new Uint8Array(0))
    await s.put('empty-string', '')
    bytesEqual(await s.get('empty-string'), new Uint8Array(0))
    assert.deepEqual({ ...(await s.stat('empty')), modified: undefined }, { size: 0, isFile: true, modified: undefined })
  })

  test('binary values (every byte value) and 1 MiB values round-trip exactly', async ({ open }) => {
    const s = await open()
    const all = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256)
    await s.put('bin/all-bytes', all)
    bytesEqual(await s.get('bin/all-bytes'), all)
    const big = makeValue(42, MiB)
    await s.put('bin/one-mib', big)
    bytesEqual(await s.get('bin/one-mib'), big)
    assert.equal((await s.stat('bin/one-mib'))?.size, MiB)
  })

  test('a stored value is a copy: changing the buffers passed in or read out changes nothing', async ({ open }) => {
    const s = await open()
    const value = new Uint8Array([1, 2, 3])
    await s.put('copy', value)
    value[0] = 9
    const read = await s.get('copy')
    read![1] = 9
    bytesEqual(await s.get('copy'), new Uint8Array([1, 2, 3]))
  })

  test('read-after-write: another instance on the same storage sees a put at once', async ({ open }) => {
    const [a, b] = [await open(), await open()]
    for (let i = 0; i < 20; i++) {
      await a.put('raw/k', `v${i}`)
      assert.equal(text(await b.get('raw/k')), `v${i}`)
    }
    await b.delete('raw/k')
    assert.equal(await a.get('raw/k'), null)
  })

  test('delete removes the value: get and stat return null', async ({ open }) => {
    const s = await open()
    await s.put('d/one', 'x')
    await s.delete('d/one')
    assert.equal(await s.get('d/one'), null)
    assert.equal(await s.stat('d/one'), null)
    assert.deepEqual(await s.list('d'), [])
  })

  test('delete removes every value under the directory key/, and nothing beside it', async ({ open }) => {
    const s = await open()
    const inside = ['t/a/x', 't/a/y/z', 't/a/y/w/v']
    const beside = ['t/ab', 't/a-b/c', 't/a.b', 't/b/a']
    for (const k of [...inside, ...beside]) await s.put(k, k)
    await s.delete('t/a')
    for (const k of inside) assert.equal(await s.get(k), null, k)
    for (const k of beside) assert.equal(text(await s.get(k)), k, k)
    assert.equal(await s.stat('t/a'), null)
    assert.deepEqual(await s.list('t'), ['t/a-b', 't/a.b', 't/ab', 't/b'])
    await s.put('t/ab', 'again')
    await s.delete('t/ab')
    assert.equal(text(await s.get('t/a.b')), 't/a.b')
  })

  test('deleting what does not exist succeeds', async ({ open }) => {
    const s = await open()
    await s.delete('never/was')
    await s.delete('never')
    await s.put('here', 'x')
    await s.delete('here/under')
    assert.equal(text(await s.get('here')), 'x')
  })

  test('list is sorted, gives full keys, and shows sub-directories as keys without a slash', async ({ open }) => {
    const s = await open()
    const names = ['b', 'A', 'Z9', '~t', '-x', '_y', '0', '.dot', '@at', '+p', '=e', 'm.json']
    for (const n of names) await s.put(`l/${n}`, n)
    await s.put('l/sub/deep/er', '1')
    await s.put('l/sub/two', '2')
    await s.put('l/Dir2/x', '3')
    const expected = [...names, 'sub', 'Dir2'].map((n) => `l/${n}`).sort()
    assert.deepEqual(await s.list('l'), expected)
    assert.deepEqual(await s.list('l/sub'), ['l/sub/deep', 'l/sub/two'])
  })

  test('a recursive list gives every value at any depth, sorted, and no directories', async ({ open }) => {
    const s = await open()
    const keys = ['r/z', 'r/a/b/c/d', 'r/a/b/e', 'r/a/f', 'r/q/r', 'r/A']
    for (const k of keys) await s.put(k, k)
    await s.put('r2/not-listed', 'x')
    assert.deepEqual(await s.list('r', { recursive: true }), [...keys].sort())
    assert.deepEqual(await s.list('r/a', { recursive: true }), ['r/a/b/c/d', 'r/a/b/e', 'r/a/f'])
    assert.deepEqual(await s.list('r', { recursive: false }), ['r/A', 'r/a', 'r/q', 'r/z'])
  })

  test('a missing directory lists as [], recursive or not; so does a value', async ({ open }) => {
    const s = await open()
    assert.deepEqual(await s.list('nothing'), [])
    assert.deepEqual(await s.list('nothing/here', { recursive: true }), [])
    await s.put('file', 'x')
    assert.deepEqual(await s.list('file'), [])
    assert.deepEqual(await s.list('file', { recursive: true }), [])
  })

  test('a directory whose last value was deleted is no longer listed', async ({ open }) => {
    const s = await open()
    await s.put('p/gone/deep/v', 'x')
    await s.put('p/kept', 'y')
    await s.delete('p/gone/deep/v')
    assert.deepEqual(await s.list('p'), ['p/kept'])
    assert.equal(await s.stat('p/gone'), null)
    await s.delete('p/kept')
    assert.deepEqual(await s.list('p'), [])
  })

  test('stat gives the size and modification time of a value', async ({ open }) => {
    const s = await open()
    const before = Date.now()
    await s.put('st/v', makeValue(1, 1234))
    const after = Date.now()
    const st = await s.stat('st/v')
    assert.ok(st, 'stat returned null')
    assert.equal(st.isFile, true)
    assert.equal(st.size, 1234)
    assert.ok(st.modified instanceof Date)
    // 1 s of slack each way: some backends keep whole seconds
    assert.ok(st.modified.getTime() >= before - 1000 && st.modified.getTime() <= after + 1000, `modified ${st.modified.toISOString()}`)
    await sleep(1100)
    await s.put('st/v', 'x')
    assert.ok((await s.stat('st/v'))!.modified.getTime() > st.modified.getTime(), 'modified did not move on overwrite')
  }, 10_000)

  test('stat gives { isFile: false } for a directory and null when neither exists', async ({ open }) => {
    const s = await open()
    await s.put('sd/inner/v', 'x')
    assert.equal((await s.stat('sd'))?.isFile, false)
    assert.equal((await s.stat('sd/inner'))?.isFile, false)
    assert.equal(await s.stat('sd/none'), null)
    assert.equal(await s.stat('sd/inner/v/below'), null)
  })

  test('keys have file-system semantics: a/b is a value inside the directory a', async ({ open }) => {
    const s = await open()
    await s.put('fsem/a/b', 'x')
    assert.deepEqual(await s.list('fsem'), ['fsem/a'])
    assert.deepEqual(await s.list('fsem/a'), ['fsem/a/b'])
    assert.equal(await s.get('fsem/a'), null)
  })
}
