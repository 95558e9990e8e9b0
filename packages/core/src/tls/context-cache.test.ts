import net, { type AddressInfo } from 'node:net'
import { once } from 'node:events'
import tls from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, isAcmeError } from '../errors.js'
import { testCa, type TestLeaf } from '../../test/certs.js'
import { echo, handshake, startTlsServer } from '../../test/tls-peer.js'
import { ContextCache, DEFAULT_MAX_CONTEXTS, type ServableCertificate } from './context-cache.js'

const ca = testCa()
const leaves = new Map<string, TestLeaf>()
/** One leaf per name list, issued once per file (openssl is a few ms per leaf). */
function leaf (...names: string[]): TestLeaf {
  const key = names.join(',')
  let found = leaves.get(key)
  if (found === undefined) {
    found = ca.issue(names)
    leaves.set(key, found)
  }
  return found
}
const servable = ({ names, certificate, privateKey, notAfter }: TestLeaf): ServableCertificate => ({ names, certificate, privateKey, notAfter })

let fallback: TestLeaf
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const close of cleanups.splice(0)) await close() })
beforeAll(() => { fallback = leaf('fallback.test') })
afterAll(() => ca.cleanup())

/** A server whose SNICallback is cache.lookup(); unknown names get the fallback certificate. */
async function serve (cache: ContextCache, extra: tls.TlsOptions = {}) {
  const started = await startTlsServer({
    key: fallback.privateKey,
    cert: fallback.certificate,
    SNICallback: (name, cb) => cb(null, cache.lookup(name)),
    ...extra,
  })
  cleanups.push(started.close)
  return started
}

async function served (port: number, servername: string, options: tls.ConnectionOptions = {}) {
  const result = await handshake(port, { servername, ca: ca.root, ...options })
  result.socket.end()
  return result
}

describe('ContextCache over real TLS', () => {
  it('serves a certificate for each of its names, trusted by the client', async () => {
    const cache = new ContextCache()
    const cert = leaf('a.test', 'www.a.test')
    cache.set('a.test', servable(cert))
    const { port } = await serve(cache)
    for (const name of ['a.test', 'www.a.test']) {
      const result = await served(port, name)
      expect(result.authorized, result.authorizationError).toBe(true)
      expect(result.serial).toBe(cert.serial)
      expect(result.subjectCN).toBe('a.test')
    }
    expect(cache.contextCount).toBe(1)
    expect(cache.builds).toBe(1)
  })

  it('matches a wildcard for one label only: never the apex, never two labels deep', async () => {
    const cache = new ContextCache()
    const wildcard = leaf('*.w.test')
    cache.set('*.w.test', servable(wildcard))
    const { port } = await serve(cache)

    const one = await served(port, 'x.w.test')
    expect(one.authorized, one.authorizationError).toBe(true)
    expect(one.serial).toBe(wildcard.serial)
    for (const name of ['w.test', 'a.b.w.test']) {
      expect((await served(port, name)).serial).toBe(fallback.serial)
      expect(cache.has(name)).toBe(false)
    }
  })

  it('prefers an exact name over a wildcard, and normalises case and a trailing dot', async () => {
    const cache = new ContextCache()
    const wildcard = leaf('*.w.test')
    const exact = leaf('x.w.test')
    cache.set('*.w.test', servable(wildcard))
    cache.set('x.w.test', servable(exact))
    const { port } = await serve(cache)
    expect((await served(port, 'x.w.test')).serial).toBe(exact.serial)
    expect((await served(port, 'Y.W.Test')).serial).toBe(wildcard.serial)
    expect(cache.lookup('X.W.TEST.')).toBe(cache.lookup('x.w.test'))
    expect(cache.certificateFor('y.w.test.')?.primaryName).toBe('*.w.test')
  })

  it('swaps the served certificate for new handshakes while an open connection keeps working', async () => {
    const cache = new ContextCache()
    const before = leaf('swap.test')
    const after = ca.issue(['swap.test'])
    cache.set('swap.test', servable(before))
    const { port } = await serve(cache)

    const open = await handshake(port, { servername: 'swap.test', ca: ca.root })
    expect(open.serial).toBe(before.serial)
    cache.set('swap.test', servable(after))
    expect(cache.contextCount).toBe(0)
    // the name is in use: its new context is built at once, not by the next handshake
    await new Promise(setImmediate)
    expect(cache).toMatchObject({ contextCount: 1, builds: 2 })

    const fresh = await served(port, 'swap.test')
    expect(cache.builds).toBe(2)
    expect(fresh.authorized, fresh.authorizationError).toBe(true)
    expect(fresh.serial).toBe(after.serial)
    expect(await echo(open.socket, 'still here')).toBe('still here')
    open.socket.end()

    // a name no handshake used is replaced without building anything
    cache.set('cold.test', servable(leaf('cold.test')))
    cache.set('cold.test', servable(leaf('cold.test')))
    await new Promise(setImmediate)
    expect(cache.builds).toBe(2)
  })

  it('stops serving a deleted certificate', async () => {
    const cache = new ContextCache()
    cache.set('gone.test', servable(leaf('gone.test')))
    const { port } = await serve(cache)
    expect(cache.lookup('gone.test')).toBeDefined()
    expect(cache.delete('gone.test')).toBe(true)
    expect(cache.delete('gone.test')).toBe(false)
    expect(cache).toMatchObject({ size: 0, contextCount: 0 })
    expect((await served(port, 'gone.test')).serial).toBe(fallback.serial)
  })

  it('keeps at most maxContexts built, evicting the least recently used, and evicted names still work', async () => {
    const cache = new ContextCache({ maxContexts: 3 })
    const certs = ['l0', 'l1', 'l2', 'l3', 'l4', 'l5'].map((label) => leaf(`${label}.lru.test`))
    for (const cert of certs) cache.set(cert.names[0] as string, servable(cert))
    const { port } = await serve(cache)

    const order = [0, 1, 2, 0, 3, 0, 4, 5, 1, 2, 0, 3, 4, 5, 0]
    for (const i of order) {
      const cert = certs[i] as TestLeaf
      const result = await served(port, cert.names[0] as string)
      expect(result.authorized, result.authorizationError).toBe(true)
      expect(result.serial).toBe(cert.serial)
      expect(cache.contextCount).toBeLessThanOrEqual(3)
    }
    expect(cache.evictions).toBeGreaterThan(0)
    expect(cache.builds).toBe(cache.evictions + cache.contextCount)

    // l0 was used last: touching two others and building a third must not evict it
    const builds = cache.builds
    cache.lookup('l0.lru.test')
    expect(cache.builds).toBe(builds)
    cache.lookup('l1.lru.test')
    cache.lookup('l2.lru.test')
    expect(cache.builds).toBe(builds + 2)
    cache.lookup('l0.lru.test')
    expect(cache.builds).toBe(builds + 2)
  })

  it('frees evicted contexts at once with closeEvicted, without disturbing open connections', async () => {
    const cache = new ContextCache({ maxContexts: 1, closeEvicted: true })
    const first = leaf('c1.test')
    cache.set('c1.test', servable(first))
    cache.set('c2.test', servable(leaf('c2.test')))
    const { port } = await serve(cache)

    const open = await handshake(port, { servername: 'c1.test', ca: ca.root })
    const evicted = cache.lookup('c1.test') as tls.SecureContext
    expect(evicted.context.getCertificate()).not.toBeNull()
    await served(port, 'c2.test')
    expect(evicted.context.getCertificate()).toBeNull()
    expect(await echo(open.socket, 'ping')).toBe('ping')
    open.socket.end()
    expect((await served(port, 'c1.test')).serial).toBe(first.serial)
  })
})

describe('ContextCache TLS options', () => {
  const tls13 = { minVersion: 'TLSv1.3' as const }

  it('builds every context with the base options (a TLSv1.3-only context refuses a TLSv1.2 client)', async () => {
    const cache = new ContextCache({ tlsOptions: tls13 })
    cache.set('v13.test', servable(leaf('v13.test')))
    // a context used as a socket's own context: what Node does with it beyond the key and chain
    const server = net.createServer((raw) => {
      const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: cache.lookup('v13.test') })
      socket.on('error', () => socket.destroy())
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    cleanups.push(async () => { await new Promise((resolve) => server.close(resolve)) })
    const { port } = server.address() as AddressInfo

    await expect(handshake(port, { servername: 'v13.test', maxVersion: 'TLSv1.2' })).rejects.toThrow()
    const ok = await served(port, 'v13.test')
    expect(ok.socket.getProtocol()).toBe('TLSv1.3')
    expect(cache.secureContextOptions('v13.test')).toMatchObject({ minVersion: 'TLSv1.3' })
  })

  it('keeps the options and ticket keys across setSecureContext() with secureContextOptions()', async () => {
    const cache = new ContextCache({ tlsOptions: tls13 })
    const one = leaf('one.test')
    const two = leaf('two.test')
    cache.set('one.test', servable(one))
    cache.set('two.test', servable(two))
    const { server, port } = await startTlsServer({ ...cache.secureContextOptions('one.test') })
    cleanups.push(async () => { await new Promise((resolve) => server.close(resolve)) })
    const ticketKeys = server.getTicketKeys()

    expect((await served(port, 'one.test')).serial).toBe(one.serial)
    server.setSecureContext({ ...cache.secureContextOptions('two.test'), ticketKeys: server.getTicketKeys() })
    const after = await served(port, 'two.test')
    expect(after.authorized, after.authorizationError).toBe(true)
    expect(after.serial).toBe(two.serial)
    await expect(handshake(port, { servername: 'two.test', maxVersion: 'TLSv1.2' })).rejects.toThrow()
    expect(server.getTicketKeys().equals(ticketKeys)).toBe(true)
  })

  it('resumes sessions with the server\'s ticket keys across set() and a setSecureContext() that passes them', async () => {
    const cache = new ContextCache()
    cache.set('resume.test', servable(leaf('resume.test')))
    const { server, port } = await serve(cache)
    const ticket = async () => {
      const first = await handshake(port, { servername: 'resume.test', ca: ca.root })
      const [session] = await once(first.socket, 'session') as [Buffer]
      first.socket.end()
      return session
    }
    const resumed = async (session: Buffer) => {
      const again = await handshake(port, { servername: 'resume.test', ca: ca.root, session })
      again.socket.end()
      return again.socket.isSessionReused()
    }

    let session = await ticket()
    expect(await resumed(session)).toBe(true)
    cache.set('resume.test', servable(ca.issue(['resume.test'])))
    expect(await resumed(session)).toBe(true)
    // without ticketKeys, Node draws new ones (once passed, the server remembers them)
    const defaults = { key: fallback.privateKey, cert: fallback.certificate }
    server.setSecureContext(defaults)
    expect(await resumed(session)).toBe(false)
    session = await ticket()
    server.setSecureContext({ ...defaults, ticketKeys: server.getTicketKeys() })
    expect(await resumed(session)).toBe(true)
  })

  it('drops built contexts on setTlsOptions() and refuses options Node refuses', () => {
    const cache = new ContextCache()
    cache.set('opt.test', servable(leaf('opt.test')))
    cache.lookup('opt.test')
    expect(cache.contextCount).toBe(1)
    cache.setTlsOptions({ ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', key: 'ignored', cert: 'ignored' } as never)
    expect(cache.contextCount).toBe(0)
    expect(cache.secureContextOptions('opt.test')).toMatchObject({ ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', key: leaf('opt.test').privateKey })
    expect(cache.lookup('opt.test')).toBeDefined()
    expect(() => cache.setTlsOptions({ ciphers: 'NOT-A-CIPHER' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }))
  })
})

describe('ContextCache bookkeeping', () => {
  it('sets 10,000 certificates quickly without building a single context', () => {
    const cache = new ContextCache()
    const seeds = [leaf('s0.test'), leaf('s1.test'), leaf('s2.test')]
    const started = performance.now()
    for (let i = 0; i < 10_000; i++) {
      const seed = seeds[i % seeds.length] as TestLeaf
      // distinct strings, as certificates read from storage would be
      cache.set(`n${i}.test`, {
        names: [`n${i}.test`, `www.n${i}.test`],
        certificate: Buffer.from(seed.certificate).toString(),
        privateKey: Buffer.from(seed.privateKey).toString(),
        notAfter: seed.notAfter,
      })
    }
    expect(performance.now() - started).toBeLessThan(5_000) // measured ~65 ms; generous for CI
    expect(cache).toMatchObject({ size: 10_000, contextCount: 0, builds: 0, maxContexts: DEFAULT_MAX_CONTEXTS })
    expect(cache.has('www.n9999.test')).toBe(true)
    expect(cache.lookup('n4321.test')).toBeDefined()
    expect(cache.contextCount).toBe(1)
  })

  it('returns the certificate as set, chain byte for byte, without building', () => {
    const cache = new ContextCache()
    const cert = leaf('entry.test', '*.entry.test')
    cache.set('entry.test', servable(cert))
    expect(cache.certificateFor('x.entry.test')).toEqual({ primaryName: 'entry.test', ...servable(cert) })
    expect(cache.certificateFor('nope.test')).toBeUndefined()
    expect(cache.secureContextOptions('nope.test')).toBeUndefined()
    expect(cache.contextCount).toBe(0)
  })

  it('lets the latest certificate win a shared name and falls back when it goes', () => {
    const cache = new ContextCache()
    const a = leaf('shared.test', 'a-only.test')
    const b = leaf('shared.test', 'b-only.test')
    cache.set('a', servable(a))
    cache.set('b', servable(b))
    expect(cache.certificateFor('shared.test')?.primaryName).toBe('b')
    cache.set('a', servable(a)) // a renewal of a claims the name again
    expect(cache.certificateFor('shared.test')?.primaryName).toBe('a')
    cache.delete('a')
    expect(cache.certificateFor('shared.test')?.primaryName).toBe('b')
    expect(cache.has('a-only.test')).toBe(false)
    cache.set('b', { ...servable(b), names: ['b-only.test'] })
    expect(cache.has('shared.test')).toBe(false)
  })

  it('reports a certificate that cannot be built once, serves the default meanwhile, and recovers on set()', () => {
    const errors: unknown[] = []
    const cache = new ContextCache({ onBuildError: (error) => errors.push(error) })
    const good = leaf('bad.test')
    cache.set('bad.test', { ...servable(good), privateKey: leaf('other.test').privateKey })
    expect(cache.lookup('bad.test')).toBeUndefined()
    expect(cache.lookup('bad.test')).toBeUndefined()
    expect(errors).toHaveLength(1)
    expect(isAcmeError(errors[0], ErrorCodes.STORAGE_CORRUPT)).toBe(true)
    cache.set('bad.test', servable(good))
    expect(cache.lookup('bad.test')).toBeDefined()
  })

  it('refuses bad input with coded errors', () => {
    const cert = servable(leaf('input.test'))
    const cache = new ContextCache()
    const bad: Array<() => unknown> = [
      () => new ContextCache({ maxContexts: 0 }),
      () => new ContextCache({ maxContexts: 1.5 }),
      () => cache.set('', cert),
      () => cache.set('x', { ...cert, names: [] }),
      () => cache.set('x', { ...cert, names: [''] }),
      () => cache.set('x', { ...cert, certificate: 'not a pem' }),
      () => cache.set('x', { ...cert, privateKey: '' }),
      () => cache.set('x', { ...cert, notAfter: new Date(Number.NaN) }),
    ]
    for (const fn of bad) expect(fn).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }))
    expect(cache.size).toBe(0)
  })
})
