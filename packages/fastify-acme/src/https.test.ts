import { memoryStorage } from '@fastify-acme/core'
import { createTlsFixture } from '@fastify-acme/harness'
import Fastify, { type FastifyInstance } from 'fastify'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import tls from 'node:tls'
import { describe, expect, it, vi } from 'vitest'
import { newSite, pebbleOptions, pointName, uniqueLoopbackAddress } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

/** A handshake to `servername`: resolves with when and how it ended (it never completes here). */
function pendingHandshake (host: string, port: number, servername: string): Promise<{ ms: number, outcome: string }> {
  const started = Date.now()
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false }, () => { socket.destroy(); resolve({ ms: Date.now() - started, outcome: 'connected' }) })
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ ms: Date.now() - started, outcome: err.code ?? err.message }))
    socket.on('close', () => resolve({ ms: Date.now() - started, outcome: 'closed' }))
  })
}

/** Starts `app` on a fresh loopback address, opens a handshake for `servername`, and closes the app while it waits. */
async function closeDuringHandshake (app: FastifyInstance, servername: string): Promise<{ closeMs: number, handshake: { ms: number, outcome: string } }> {
  const host = uniqueLoopbackAddress()
  await app.listen({ port: 0, host })
  const { port } = app.server.address() as { port: number }
  const handshake = pendingHandshake(host, port, servername)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const started = Date.now()
  await app.close()
  return { closeMs: Date.now() - started, handshake: await handshake }
}

describe('acmeHttps() handshakes while the app closes', () => {
  it('app.close() refuses a handshake still waiting for its certificate (CA that never answers) instead of waiting handshakeTimeoutMs', async () => {
    const sockets = new Set<import('node:net').Socket>()
    const ca = http.createServer(() => {}) // accepts, never answers
    ca.on('connection', (s) => sockets.add(s))
    const caHost = uniqueLoopbackAddress()
    await new Promise<void>((resolve) => ca.listen(0, caHost, resolve))
    const app = Fastify({ https: acmeHttps() })
    try {
      await app.register(fastifyAcme, {
        env: false,
        storage: memoryStorage(),
        directoryUrl: `http://${caHost}:${(ca.address() as { port: number }).port}/dir`,
        email: 'ops@example.test',
        termsOfServiceAgreed: true,
        domains: ['app.close-hs.test'],
        challenges: { http01: { port: false } },
        closeTimeoutMs: 1000,
      })
      const { closeMs, handshake } = await closeDuringHandshake(app, 'app.close-hs.test')
      // closeTimeoutMs (1 s) for the order, not the 30 s a handshake may wait
      expect(closeMs).toBeLessThan(5000)
      expect(handshake.outcome).not.toBe('connected')
      expect(handshake.ms).toBeLessThan(5000)
    } finally {
      await app.close()
      for (const s of sockets) s.destroy()
      ca.close()
    }
  }, 45_000)

  it('app.close() refuses a handshake waiting for an on-demand allow() that never answers', async () => {
    const app = Fastify({ https: acmeHttps() })
    await app.register(fastifyAcme, {
      env: false,
      storage: memoryStorage(),
      directoryUrl: 'local',
      onDemand: { allow: () => new Promise<boolean>(() => {}), handshakeTimeoutMs: 20_000 },
    })
    const { closeMs, handshake } = await closeDuringHandshake(app, 'new.close-allow.test')
    expect(closeMs).toBeLessThan(3000)
    expect(handshake.outcome).not.toBe('connected')
    expect(handshake.ms).toBeLessThan(3000)
  }, 45_000)

  it('leaves no timer holding the process open after close when allow() never answers', async () => {
    // allow()'s race timer, told apart from the others by its delay
    const handshakeTimeoutMs = 20_017
    const timers: NodeJS.Timeout[] = []
    const setTimeoutOriginal = globalThis.setTimeout
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = setTimeoutOriginal(() => fn(...args), ms)
      if (ms === handshakeTimeoutMs) timers.push(timer)
      return timer
    }) as typeof setTimeout)
    try {
      const app = Fastify({ https: acmeHttps() })
      await app.register(fastifyAcme, {
        env: false,
        storage: memoryStorage(),
        directoryUrl: 'local',
        onDemand: { allow: () => new Promise<boolean>(() => {}), handshakeTimeoutMs },
      })
      const { handshake } = await closeDuringHandshake(app, 'new.exit-allow.test')
      expect(handshake.outcome).not.toBe('connected')
    } finally {
      spy.mockRestore()
    }
    expect(timers).toHaveLength(1)
    // still pending (allow() never settles), but unref'd: a process that closed its app can exit
    expect(timers[0]!.hasRef()).toBe(false)
  })
})

describe('acmeHttps({ tls }) on every certificate', () => {
  it.each(['in acmeHttps({ tls })', 'spread beside acmeHttps()'])('verifies client certificates with SNI when `ca` is given %s; the plugin\'s tls.options win', async (where) => {
    const client = createTlsFixture(undefined, { usage: 'client' }) // a client CA and a client certificate it signed
    const tlsOptions = { ca: client.caBundle, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }
    const app = Fastify({
      https: where === 'in acmeHttps({ tls })'
        ? { ...acmeHttps({ tls: tlsOptions }), requestCert: true, rejectUnauthorized: true }
        : { ...acmeHttps(), ...tlsOptions, requestCert: true, rejectUnauthorized: true }, // a valid client certificate with SNI was refused
    })
    app.get('/', async (request) => {
      const socket = request.raw.socket as tls.TLSSocket
      return { peer: socket.getPeerCertificate().subject?.CN, authorized: socket.authorized }
    })
    const name = 'app.mtls.test'
    await app.register(fastifyAcme, {
      env: false,
      storage: memoryStorage(),
      directoryUrl: 'local',
      domains: [name],
      challenges: { http01: false },
      tls: { options: { ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' } },
    })
    try {
      const host = uniqueLoopbackAddress()
      await app.listen({ port: 0, host })
      const { port } = app.server.address() as { port: number }
      while (app.acme.list()[0]?.status !== 'valid') await new Promise((resolve) => setTimeout(resolve, 10))
      const root = (await app.acme.localRootCertificate())!
      const get = (opts: https.RequestOptions) => new Promise<string>((resolve) => {
        https.get({ host, port, ca: root, agent: false, ...opts }, (res) => {
          let body = ''
          res.on('data', (c) => { body += c })
          res.on('end', () => resolve(`${res.statusCode} ${body}`))
        }).on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`))
      })
      const ok = `200 ${JSON.stringify({ peer: 'test client', authorized: true })}`
      // SNI selects the certificate's own context, where OpenSSL checks the client certificate
      expect(await get({ servername: name, key: client.key, cert: client.cert })).toBe(ok)
      expect(await get({ servername: name })).toMatch(/^error /)
      const options = app.acme.secureContextOptions(name)!
      expect(options.ca).toBe(client.caBundle)
      expect(options.ciphers).toBe('ECDHE-ECDSA-AES256-GCM-SHA384')
    } finally {
      await app.close()
    }
  })
})

describe('the certificate for clients without SNI', () => {
  /** The serial a client without SNI gets (an IP host sends none). */
  function noSniSerial (host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host, port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '')
        socket.destroy()
      })
      socket.on('error', reject)
    })
  }

  it('moves to the next certificate when the default one is revoked (the revoked one stayed served)', async () => {
    const site = await newSite('default')
    const other = await pointName(site.address, 'default-next')
    const app = Fastify({ https: acmeHttps() })
    try {
      await app.register(fastifyAcme, { ...pebbleOptions(site.address), domains: [[site.name], [other]] })
      const both = new Promise<void>((resolve) => { let n = 0; app.acme.on('obtained', () => { if (++n === 2) resolve() }) })
      await app.listen({ port: 0, host: site.address })
      await both
      const { port } = app.server.address() as { port: number }
      const serialOf = (name: string) => app.acme.list().find((c) => c.names[0] === name)!.serial
      expect(await noSniSerial(site.address, port)).toBe(serialOf(site.name))
      const next = serialOf(other)
      await app.acme.revoke(site.name)
      expect(await noSniSerial(site.address, port)).toBe(next)
    } finally {
      await app.close()
    }
  })
})

describe('acmeHttps() on an HTTP/2 server', () => {
  it('offers h2 with Fastify({ http2: true }) (it offered only http/1.1, so HTTP/2 clients failed), and http/1.1 too with allowHTTP1', async () => {
    for (const allowHTTP1 of [false, true]) {
      const app = Fastify({ http2: true, https: { ...acmeHttps(), allowHTTP1 } })
      app.get('/', async () => 'ok')
      try {
        await app.register(fastifyAcme, { env: false, storage: memoryStorage(), directoryUrl: 'local', domains: ['h2.example.test'] })
        const host = uniqueLoopbackAddress()
        await app.listen({ port: 0, host })
        const { port } = app.server.address() as { port: number }
        const ca = (await app.acme.localRootCertificate())!
        await app.acme.manage(['h2.example.test'])
        const client = http2.connect(`https://${host}:${port}`, { ca, servername: 'h2.example.test' })
        const body = await new Promise<string>((resolve, reject) => {
          client.on('error', reject)
          const req = client.request({ ':path': '/' })
          let text = ''
          req.setEncoding('utf8')
          req.on('data', (c: string) => { text += c })
          req.on('end', () => resolve(text))
          req.on('error', reject)
        })
        client.destroy()
        expect(body).toBe('ok')
        // (without allowHTTP1 Node's HTTP/2 server holds an HTTP/1.1 client's socket for 10 s: not tried)
        if (!allowHTTP1) continue
        const h1 = await new Promise<number>((resolve, reject) => {
          https.get({ host, port, servername: 'h2.example.test', ca, agent: false }, (res) => { res.socket.destroy(); resolve(res.statusCode ?? 0) }).on('error', reject)
        })
        expect(h1).toBe(200)
      } finally {
        await app.close()
      }
    }
  })
})

describe('a certificate for an IP address', () => {
  it('is served to clients that connect to that address (they send no SNI; they got the default certificate)', async () => {
    const host = uniqueLoopbackAddress()
    const app = Fastify({ https: acmeHttps() })
    app.get('/', async () => 'ok')
    try {
      await app.register(fastifyAcme, { env: false, storage: memoryStorage(), directoryUrl: 'local', domains: [['default.example.test'], [host]] })
      await app.listen({ port: 0, host })
      const { port } = app.server.address() as { port: number }
      await app.acme.manage([[host]])
      const ca = (await app.acme.localRootCertificate())!
      // verified against the IP address itself (the client checks the certificate's IP SAN)
      const san = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host, port, ca, ALPNProtocols: ['http/1.1'] }, () => {
          resolve(socket.getPeerX509Certificate()?.subjectAltName ?? '')
          socket.destroy()
        })
        socket.on('error', reject)
      })
      expect(san).toBe(`IP Address:${host}`)
    } finally {
      await app.close()
    }
  })
})
