import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { LockNames, StorageKeys } from '@fastify-acme/core'
import { afterAll, afterEach, describe, it, vi } from 'vitest'
import { HOSTILE_NAMES } from '../testing/names.js'
import { fsStorage } from './index.js'

const base = mkdtempSync(join(tmpdir(), 'fs-storage-files-'))
afterAll(() => rmSync(base, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }))
afterEach(() => { vi.restoreAllMocks() })
let n = 0
const freshDir = () => join(base, `t${n++}`)

/** every path under `dir`, relative, directories with a trailing slash */
const tree = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory()
  ? [`${e.name}/`, ...tree(join(dir, e.name)).map((p) => `${e.name}/${p}`)]
  : [e.name])
const mode = (path: string) => statSync(path).mode & 0o777
const codeOf = (code: string) => (err: { code?: string }) => { assert.equal(err.code, code, String(err)); return true }

describe('fsStorage files', () => {
  it('refuses bad options with ERR_ACME_INVALID_OPTION', () => {
    for (const opts of [undefined, {}, { dir: '' }, { dir: 42 }, { dir: 'x', lockTtlMs: 0 }, { dir: 'x', lockPollMs: -1 }, { dir: 'x', tempMaxAgeMs: Number.NaN }]) {
      assert.throws(() => fsStorage(opts as never), codeOf('ERR_ACME_INVALID_OPTION'), JSON.stringify(opts))
    }
  })

  it('creates the data directory and every directory inside with mode 0700, and files with 0600', async () => {
    const outer = freshDir()
    const dir = join(outer, 'nested', 'data')
    const s = fsStorage({ dir })
    await s.put('certificates/a.example/bundle.json', 'secret')
    const h = await s.lock('issue/a.example')
    for (const d of [join(outer, 'nested'), dir, join(dir, 'certificates'), join(dir, 'certificates', 'a.example'), join(dir, '#locks'), join(dir, '#locks', 'issue', 'a.example')]) {
      assert.equal(mode(d).toString(8), '700', d)
    }
    assert.equal(mode(join(dir, 'certificates', 'a.example', 'bundle.json')).toString(8), '600')
    const lockFile = join(dir, '#locks', 'issue', 'a.example', readdirSync(join(dir, '#locks', 'issue', 'a.example'))[0]!)
    assert.equal(mode(lockFile).toString(8), '600')
    await h.renew()
    await s.put('certificates/a.example/bundle.json', 'rewritten')
    assert.equal(mode(join(dir, 'certificates', 'a.example', 'bundle.json')).toString(8), '600')
    await s.close!()
  })

  it('leaves the mode of an existing data directory alone', async () => {
    const dir = freshDir()
    mkdirSync(dir, { mode: 0o755 })
    const s = fsStorage({ dir })
    await s.put('x/y', 'v')
    assert.equal(mode(dir).toString(8), '755')
    assert.equal(mode(join(dir, 'x')).toString(8), '700')
  })

  it('maps a key to the path under dir, and hostile names never write outside dir', async () => {
    const outer = freshDir()
    const dir = join(outer, 'data')
    mkdirSync(outer)
    writeFileSync(join(outer, 'sibling'), 'untouched')
    const s = fsStorage({ dir })
    await s.put('a/b/c.json', 'abc')
    assert.equal(await fs.readFile(join(dir, 'a', 'b', 'c.json'), 'utf8'), 'abc')
    for (const name of HOSTILE_NAMES) {
      await s.put(StorageKeys.certificateBundle(name), name)
      await s.put(StorageKeys.account(name, name), name)
      await (await s.lock(LockNames.issue(name))).release()
    }
    assert.deepEqual(readdirSync(outer).sort(), ['data', 'sibling'])
    for (const path of tree(dir)) {
      assert.ok(/^(a|certificates|accounts|#locks)\//.test(path), `unexpected ${path}`)
    }
    assert.equal(await fs.readFile(join(outer, 'sibling'), 'utf8'), 'untouched')
  })

  it('writes in the durable order: temp file (wx, 0600), fsync, close, rename, directory fsync', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('w/x', 'old')
    const events: string[] = []
    const pathOfFd = new Map<number, string>()
    const rel = (p: unknown) => relative(dir, String(p)) || '.'
    const realOpen = fs.open
    vi.spyOn(fs, 'open').mockImplementation(async (path, flags, fileMode) => {
      const handle = await realOpen(path, flags, fileMode)
      pathOfFd.set(handle.fd, rel(path))
      events.push(`open ${rel(path)} ${String(flags)} ${fileMode === undefined ? '' : Number(fileMode).toString(8)}`.trim())
      // close is an own property of each FileHandle, sync sits on the prototype
      const realClose = handle.close
      handle.close = () => {
        events.push(`close ${rel(path)}`)
        return realClose.call(handle)
      }
      return handle
    })
    const realRename = fs.rename
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      events.push(`rename ${rel(from)} ${rel(to)}`)
      return realRename(from, to)
    })
    const probe = await realOpen(join(dir, 'w', 'x'), 'r')
    const proto = Object.getPrototypeOf(probe) as fs.FileHandle
    await probe.close()
    const realSync = proto.sync
    vi.spyOn(proto, 'sync').mockImplementation(function (this: fs.FileHandle) {
      events.push(`sync ${pathOfFd.get(this.fd)}`)
      return realSync.call(this)
    })
    await s.put('w/x', 'new')
    vi.restoreAllMocks()
    const temp = /^open (w\/\.#tmp-\d+-[0-9a-f]+-[0-9a-z]+) wx 600$/.exec(events[0] ?? '')
    assert.ok(temp, `first step was ${events[0]}`)
    assert.deepEqual(events, [
      `open ${temp[1]} wx 600`,
      `sync ${temp[1]}`,
      `close ${temp[1]}`,
      `rename ${temp[1]} w/x`,
      'open w r',
      'sync w',
      'close w',
    ])
    assert.equal(await fs.readFile(join(dir, 'w', 'x'), 'utf8'), 'new')
  })

  it('a put that cannot land (the key is a directory, a parent is a value) fails with ERR_ACME_STORAGE and leaves no temp file', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('d/inner/v', 'x')
    await assert.rejects(s.put('d/inner', 'x'), codeOf('ERR_ACME_STORAGE'))
    await s.put('f', 'file')
    await assert.rejects(s.put('f/below', 'x'), codeOf('ERR_ACME_STORAGE'))
    await assert.rejects(s.put(`long/${'x'.repeat(300)}`, 'x'), codeOf('ERR_ACME_STORAGE'))
    assert.deepEqual(tree(dir).filter((p) => p.includes('#tmp-')), [])
    assert.equal(Buffer.from((await s.get('d/inner/v'))!).toString(), 'x')
  })

  it('get, list and stat ignore temporary files and names that are not keys', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('g/v', 'v')
    writeFileSync(join(dir, 'g', '.v#tmp-1-abc'), 'partial')
    writeFileSync(join(dir, 'g', 'not a key'), 'x')
    mkdirSync(join(dir, 'g', '#junk'))
    assert.deepEqual(await s.list('g'), ['g/v'])
    assert.deepEqual(await s.list('g', { recursive: true }), ['g/v'])
    assert.equal(await s.get('g/v/x'), null)
  })

  it('delete removes directories left empty up to, not including, dir', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('p/q/r/v', 'x')
    await s.put('p/keep', 'y')
    await s.delete('p/q/r/v')
    assert.deepEqual(tree(dir), ['p/', 'p/keep'])
    await s.delete('p')
    assert.deepEqual(tree(dir), [])
    assert.equal(statSync(dir).isDirectory(), true)
  })

  it('sweeps old temporary files tempMaxAgeMs after start (data and lock directories), also those of a crash just before it; keeps younger ones and every value', async () => {
    const dir = freshDir()
    const maxAgeMs = 300
    const files = {
      value: join(dir, 'a', 'v'),
      oldTemp: join(dir, 'a', '.v#tmp-123-abc'),
      onlyTemp: join(dir, 'b', '.w#tmp-1-ff'),
      crashTemp: join(dir, 'd', '.u#tmp-7-cc'),
      youngTemp: join(dir, 'c', '.z#tmp-9-aa'),
      lockTemp: join(dir, '#locks', 'l', '.#0000000000000001#tmp-5-bb'),
    }
    for (const path of Object.values(files)) {
      mkdirSync(join(path, '..'), { recursive: true })
      writeFileSync(path, 'x')
    }
    const at = (ms: number) => new Date(Date.now() + ms)
    for (const path of [files.oldTemp, files.onlyTemp, files.lockTemp]) utimesSync(path, at(-120_000), at(-120_000))
    utimesSync(files.crashTemp, at(-50), at(-50)) // younger than maxAgeMs at start
    utimesSync(files.youngTemp, at(60_000), at(60_000)) // still younger when the sweep runs
    const s = fsStorage({ dir, tempMaxAgeMs: maxAgeMs })
    await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 300))
    await s.close!() // waits for the sweep
    assert.deepEqual(tree(dir).sort(), ['#locks/', 'a/', 'a/v', 'c/', 'c/.z#tmp-9-aa'])
    assert.deepEqual(await fsStorage({ dir }).list('a'), ['a/v'])
  })

  it('fsyncs the parent of every directory a put creates (only the first one\'s was, so a new key could vanish in a power cut)', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('top', 'x') // the root exists
    const synced: string[] = []
    const pathOfFd = new Map<number, string>()
    const realOpen = fs.open
    vi.spyOn(fs, 'open').mockImplementation(async (path, flags, fileMode) => {
      const handle = await realOpen(path, flags, fileMode)
      pathOfFd.set(handle.fd, relative(dir, String(path)) || '.')
      return handle
    })
    const probe = await realOpen(join(dir, 'top'), 'r')
    const proto = Object.getPrototypeOf(probe) as fs.FileHandle
    await probe.close()
    const realSync = proto.sync
    vi.spyOn(proto, 'sync').mockImplementation(function (this: fs.FileHandle) {
      synced.push(pathOfFd.get(this.fd)!)
      return realSync.call(this)
    })
    await s.put('a/b/c/v', 'x')
    vi.restoreAllMocks()
    for (const parent of ['.', 'a', 'a/b', 'a/b/c']) assert.ok(synced.includes(parent), `${parent} not fsynced: ${synced.join(', ')}`)
  })

  it('makes its directory at the next use after a failure (a mount not there yet, a disk full), not never', async () => {
    const parent = join(freshDir(), 'mount')
    mkdirSync(join(parent, '..'), { recursive: true })
    writeFileSync(parent, 'not a directory yet')
    const s = fsStorage({ dir: join(parent, 'acme') })
    await assert.rejects(s.put('k', 'v'), codeOf('ERR_ACME_STORAGE'))
    rmSync(parent)
    mkdirSync(parent)
    await s.put('k', 'v')
    assert.equal(Buffer.from((await s.get('k'))!).toString(), 'v')
  })

  it('reports the real error of a directory it cannot make (mkdir -p says ENOENT for EROFS, ENOSPC, EACCES), at once', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('top', 'x')
    const realMkdir = fs.mkdir
    vi.spyOn(fs, 'mkdir').mockImplementation(async (path, opts) => {
      const err = Object.assign(new Error(`read-only: ${String(path)}`), { code: (opts as { recursive?: boolean })?.recursive ? 'ENOENT' : 'EROFS' })
      if (String(path).startsWith(join(dir, 'new'))) throw err
      return realMkdir(path, opts as never)
    })
    const started = Date.now()
    await assert.rejects(s.put('new/k', 'v'), (err: Error) => /\(EROFS\)/.test(err.message))
    assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`)
  })

  it('stores a key whose last segment is near the 255-byte name limit (the temp file was named after it)', async () => {
    const s = fsStorage({ dir: freshDir() })
    const key = `a/${'x'.repeat(240)}`
    await s.put(key, 'v')
    assert.deepEqual(await s.list('a'), [key])
  })

  it('lists a symbolic link as what it points to, as get() follows it', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('certificates/a.example/v', 'a')
    const elsewhere = freshDir()
    mkdirSync(join(elsewhere, 'b.example'), { recursive: true })
    writeFileSync(join(elsewhere, 'b.example', 'v'), 'b')
    await fs.symlink(join(elsewhere, 'b.example'), join(dir, 'certificates', 'b.example'))
    assert.deepEqual(await s.list('certificates'), ['certificates/a.example', 'certificates/b.example'])
    assert.deepEqual(await s.list('certificates', { recursive: true }), ['certificates/a.example/v', 'certificates/b.example/v'])
  })

  it('a put that fails to write (a disk full) leaves no directory behind for list() to show', async () => {
    const dir = freshDir()
    const s = fsStorage({ dir })
    await s.put('certificates/a.example/v', 'a')
    const probe = await fs.open(join(dir, 'certificates', 'a.example', 'v'), 'r')
    const proto = Object.getPrototypeOf(probe) as fs.FileHandle
    await probe.close()
    vi.spyOn(proto, 'writeFile').mockRejectedValue(Object.assign(new Error('no space left'), { code: 'ENOSPC' }))
    await assert.rejects(s.put('certificates/big.example/v', 'b'), codeOf('ERR_ACME_STORAGE'))
    vi.restoreAllMocks()
    assert.deepEqual(await s.list('certificates'), ['certificates/a.example'])
  })

  it('closing before tempMaxAgeMs leaves the sweep to the next start', async () => {
    const dir = freshDir()
    const temp = join(dir, 'a', '.v#tmp-123-abc')
    mkdirSync(join(temp, '..'), { recursive: true })
    writeFileSync(temp, 'x')
    utimesSync(temp, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000))
    await fsStorage({ dir }).close!()
    assert.deepEqual(tree(dir).sort(), ['a/', 'a/.v#tmp-123-abc'])
  })
})
