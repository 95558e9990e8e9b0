import { memoryStorage } from '@fastify-acme/core'
import { createTlsFixture } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { randomBytes, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { httpsGet, listenAndObtain, newSite, pebbleOptions, pebbleRoot, uniqueLoopbackAddress } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

describe('fastify-acme against Pebble', () => {
  const apps: FastifyInstance[] = []
  afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())) })

  it('issues with HTTP-01 and serves the certificate over HTTPS (acmeHttps SNI)', async () => {
    const { address, name } = await newSite()
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    app.get('/', async () => 'hello')
    await app.register(fastifyAcme, { ...pebbleOptions(address), domains: [name] })
    const port = await listenAndObtain(app, address)
    const res = await httpsGet(address, port, name, await pebbleRoot())
    expect(res).toMatchObject({ status: 200, body: 'hello' })
    expect(app.acme.list()[0]).toMatchObject({ names: [name], status: 'valid' })
  })

  it('serves through setSecureContext on a plain Fastify({ https }) server, keeping its TLS options, on every binding', async () => {
    const { address, name } = await newSite()
    const bootstrap = createTlsFixture()
    const httpsOptions = { key: bootstrap.key, cert: bootstrap.cert, minVersion: 'TLSv1.3' as const }
    const app = Fastify({ https: httpsOptions })
    apps.push(app)
    app.get('/', async () => 'plain')
    await app.register(fastifyAcme, { ...pebbleOptions(address), domains: [name] })
    // a second binding built the way Fastify builds one for 'localhost' (::1 beside 127.0.0.1):
    // same options, same request handler, not reachable through app.server
    const secondary = https.createServer(httpsOptions, app.server.listeners('request')[0] as () => void)
    const secondaryAddress = uniqueLoopbackAddress()
    await new Promise<void>((resolve) => secondary.listen(0, secondaryAddress, resolve))
    const port = await listenAndObtain(app, address)
    const secondaryPort = (secondary.address() as { port: number }).port
    const root = await pebbleRoot()
    expect(await httpsGet(address, port, name, root)).toMatchObject({ status: 200, body: 'plain' })
    expect(await httpsGet(secondaryAddress, secondaryPort, name, root)).toMatchObject({ status: 200, body: 'plain' })
    // minVersion TLSv1.3 survived the swap: a TLS 1.2 client is refused
    await expect(new Promise((resolve, reject) => {
      const socket = tls.connect({ host: address, port, servername: name, ca: root, maxVersion: 'TLSv1.2' }, () => { socket.destroy(); resolve('connected') })
      socket.on('error', reject)
    })).rejects.toThrow()
    secondary.close()
  })
})

describe('fastify-acme on a plain Fastify({ https }) server', () => {
  it('swaps the server context only when the default certificate changes', async () => {
    const bootstrap = createTlsFixture()
    const app = Fastify({ https: { key: bootstrap.key, cert: bootstrap.cert } })
    const names = ['a.plain-swap.test', 'b.plain-swap.test']
    await app.register(fastifyAcme, { env: false, directoryUrl: 'local', storage: memoryStorage(), domains: [[names[0]!], [names[1]!]], challenges: { http01: false } })
    const server = app.server as tls.Server
    const swaps: string[] = []
    const original = server.setSecureContext.bind(server)
    server.setSecureContext = (options) => { swaps.push(String(options.cert)); original(options) }
    try {
      await app.listen({ host: '127.0.0.1', port: 0 })
      while (app.acme.list().filter((e) => e.status === 'valid').length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
      // one swap, or two when the second name's certificate came first (it was the default until then)
      const initial = swaps.length
      expect(initial).toBeGreaterThanOrEqual(1)
      expect(initial).toBeLessThanOrEqual(2)
      const defaultName = app.acme.defaultName()!
      expect(new X509Certificate(swaps.at(-1)!).subjectAltName).toContain(`DNS:${defaultName}`)
      const other = names.find((n) => n !== defaultName)!
      await app.acme.renew(other, { force: true })
      expect(swaps.length).toBe(initial) // another name's renewal: nothing to swap
      await app.acme.renew(defaultName, { force: true })
      expect(swaps.length).toBe(initial + 1)
      expect(swaps.at(-1)).not.toBe(swaps[0])
    } finally {
      await app.close()
    }
  })
})

describe('fastify-acme with acmeHttps(): clients without SNI, and server-level TLS options', () => {
  it('serves the default certificate to a client with neither SNI nor ALPN, refuses unknown names, and applies tls.options versions', async () => {
    const app = Fastify({ https: acmeHttps() })
    app.get('/', async () => 'ok')
    const names = ['first.no-sni.test', 'second.no-sni.test']
    await app.register(fastifyAcme, { env: false, directoryUrl: 'local', storage: memoryStorage(), domains: [[names[0]!], [names[1]!]], challenges: { http01: false }, tls: { options: { minVersion: 'TLSv1.3' } } })
    try {
      await app.listen({ host: '127.0.0.1', port: 0 })
      const { port } = app.server.address() as { port: number }
      while (app.acme.list().filter((e) => e.status === 'valid').length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
      const connect = (opts: tls.ConnectionOptions) => new Promise<tls.PeerCertificate>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => { const cert = socket.getPeerCertificate(); socket.destroy(); resolve(cert) })
        socket.on('error', reject)
      })
      // an IP literal: no SNI; and no ALPN offered (as many health checks and plain Node clients)
      expect((await connect({})).subject.CN).toBe(app.acme.defaultName())
      expect((await connect({ servername: names[1] })).subject.CN).toBe(names[1])
      await expect(connect({ servername: 'unknown.no-sni.test' })).rejects.toThrow()
      // minVersion from the plugin's tls.options holds on the server itself
      await expect(connect({ servername: names[0], maxVersion: 'TLSv1.2' })).rejects.toThrow()
    } finally {
      await app.close()
    }
  })
})

describe('fastify-acme challenges and configuration', () => {
  const { pebble } = services()
  const apps: FastifyInstance[] = []
  afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())) })

  it('issues with TLS-ALPN-01 alone: no HTTP-01 route, no port-80 listener', async () => {
    const { address, name } = await newSite()
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    app.get('/', async () => 'alpn')
    await app.register(fastifyAcme, { ...pebbleOptions(address), domains: [name], challenges: { http01: false } })
    await listenAndObtain(app, address, pebble.tlsPort)
    const res = await httpsGet(address, pebble.tlsPort, name, await pebbleRoot())
    expect(res).toMatchObject({ status: 200, body: 'alpn' })
    expect((await app.inject({ url: '/.well-known/acme-challenge/abcdefghijklmnopqrstuvwxyz012345' })).statusCode).toBe(404)
  })

  it('tries a challenge type that failed for a name last at the next attempt', async () => {
    const { address, name } = await newSite()
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    // HTTP-01 first, but nothing answers on port 80 of this address; TLS-ALPN-01 would work
    await app.register(fastifyAcme, { ...pebbleOptions(address), challenges: { http01: { port: false }, order: ['http-01', 'tls-alpn-01'] } })
    await app.listen({ port: pebble.tlsPort, host: address })
    const first = await app.acme.obtain([name]).then(() => null, (e: unknown) => e)
    expect(first).toMatchObject({ code: 'ERR_ACME_CHALLENGE_FAILED', message: expect.stringContaining('http-01') })
    const obtained = new Promise<unknown>((resolve) => app.acme.once('obtained', resolve))
    await app.acme.renew(name, { force: true })
    await obtained
    expect(app.acme.list()[0]).toMatchObject({ names: [name], status: 'valid' })
  })

  it('takes its whole configuration from the environment', async () => {
    const { address, name } = await newSite()
    const { mkdtempSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(`${tmpdir()}/acme-env-`)
    const saved = { ...process.env }
    Object.assign(process.env, {
      ACME_DOMAINS: name,
      ACME_EMAIL: 'env@example.test',
      ACME_DIRECTORY_URL: pebble.directoryUrl,
      ACME_CA_BUNDLE: pebble.caBundle,
      ACME_TERMS_OF_SERVICE_AGREED: 'true',
      ACME_STORAGE: `file://${dir}`,
      ACME_STORAGE_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      ACME_HTTP_PORT: String(pebble.httpPort),
      ACME_HTTP_HOST: address,
    })
    try {
      const app = Fastify({ https: acmeHttps() })
      apps.push(app)
      app.get('/', async () => 'env')
      await app.register(fastifyAcme)
      const port = await listenAndObtain(app, address)
      expect(await httpsGet(address, port, name, await pebbleRoot())).toMatchObject({ status: 200, body: 'env' })
      // ACME_STORAGE_KEYS: what reached the disk is encrypted
      const stored = readFileSync(path.join(dir, 'certificates', name, 'bundle.json'))
      expect(stored.subarray(0, 3).toString('latin1')).toBe('FAE')
      expect(stored.toString('latin1')).not.toContain('PRIVATE KEY')
    } finally {
      process.env = saved
    }
  })

  it('names the bad environment variable', async () => {
    const app = Fastify()
    apps.push(app)
    const err = await app.register(fastifyAcme, { env: { ACME_HTTP_PORT: 'eighty' } }).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
    expect((err as Error).message).toContain('ACME_HTTP_PORT')
  })

  it('checks the plugin\'s own options at registration, naming the bad one', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ challenges: { http01: { port: 70_000 } } }, 'challenges.http01.port'],
      [{ challenges: { http01: { port: '80' } } }, 'challenges.http01.port'],
      [{ challenges: { http01: { host: '' } } }, 'challenges.http01.host'],
      [{ challenges: { http01: { redirect: 'yes' } } }, 'challenges.http01.redirect'],
      [{ challenges: { http01: 'on' } }, 'challenges.http01'],
      [{ closeTimeoutMs: -1 }, 'closeTimeoutMs'],
      [{ tls: { maxContexts: 0 } }, 'tls.maxContexts'],
      [{ localCa: { leafLifetimeMs: 10 } }, 'localCa.leafLifetimeMs'],
      [{ directoryUrl: 'http://ca.example.test/dir' }, 'directoryUrl'],
      [{ statusPage: { onRequest: async () => {}, refreshSeconds: 0.4 } }, 'statusPage.refreshSeconds'], // would reload at once, forever
      [{ onDemand: { allow: () => true } }, 'onDemand'], // no acmeHttps(): no handshake would ever reach it
      // a string for a boolean was read as its truthiness, or ignored
      [{ challenges: { tlsAlpn01: 'no' } }, 'challenges.tlsAlpn01'],
      [{ renewal: { stagingFallback: 'false' } }, 'renewal.stagingFallback'],
      [{ reuseKey: 'true' }, 'reuseKey'],
      [{ challenges: { order: ['http01'] } }, 'challenges.order'],
      [{ challenges: { order: 'dns-01' } }, 'challenges.order'],
      [{ env: 'false' }, 'env'],
    ]
    for (const [options, name] of cases) {
      // the local CA: no ACME issuer, so nothing else would ever look at the HTTP-01 listener's options
      const app = Fastify()
      apps.push(app)
      const err = await app.register(fastifyAcme, { env: false, storage: memoryStorage(), ...options }).then(() => null, (e: unknown) => e)
      expect(err, name).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining(`option "${name}"`) })
    }
  })

  it('refuses an unknown option, suggesting the one meant', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ directoryURL: 'letsencrypt' }, /unknown option "directoryURL" \(did you mean "directoryUrl"\?\)/],
      [{ domian: ['a.test'] }, /unknown option "domian" \(did you mean "domains"\?\)/],
      [{ logger: console }, /unknown option "logger"/],
      [{ issuers: [{ directoryUrl: 'local', emial: 'a@b.test' }] }, /unknown option "issuers\[0\]\.emial" \(did you mean "issuers\[0\]\.email"\?\)/],
      // below the top level too (each kept its default)
      [{ renewal: { ratoi: 0.5 } }, /unknown option "renewal\.ratoi" \(did you mean "renewal\.ratio"\?\)/],
      [{ challenges: { http01: { prot: 8080 } } }, /unknown option "challenges\.http01\.prot" \(did you mean "challenges\.http01\.port"\?\)/],
      [{ challenges: { http: false } }, /unknown option "challenges\.http"/],
      [{ localCa: { leafLifetime: 60_000 } }, /unknown option "localCa\.leafLifetime" \(did you mean "localCa\.leafLifetimeMs"\?\)/],
      [{ tls: { maxContext: 5 } }, /unknown option "tls\.maxContext" \(did you mean "tls\.maxContexts"\?\)/],
      [{ tls: { options: { key: 'x' } } }, /option "tls\.options\.key" is not accepted/],
    ]
    for (const [options, message] of cases) {
      const app = Fastify()
      apps.push(app)
      const err = await app.register(fastifyAcme, { env: false, storage: memoryStorage(), ...options }).then(() => null, (e: unknown) => e)
      expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringMatching(message) })
    }
    // Fastify's own register() options are not the plugin's business; false turns either route off
    const app = Fastify()
    apps.push(app)
    await app.register(fastifyAcme, { env: false, storage: memoryStorage(), logLevel: 'warn', statusPage: false, metrics: false } as never)
  })

  it('lets the environment fill an option the code sets to undefined, and names the variable behind a bad value', async () => {
    const app = Fastify()
    apps.push(app)
    const config: { directoryUrl?: string, domains?: string[] } = {}
    const env = { ACME_DIRECTORY_URL: pebble.directoryUrl, ACME_DOMAINS: 'env-filled.test' }
    await app.register(fastifyAcme, { env, storage: memoryStorage(), caBundle: pebble.caBundle, termsOfServiceAgreed: true, challenges: { http01: { port: false } }, domains: config.domains, directoryUrl: config.directoryUrl })
    expect(app.acme.usesAcme).toBe(true) // not the local CA
    expect(app.acme.list().map((e) => e.names)).toEqual([['env-filled.test']])
    const cases: Array<[Record<string, string>, string]> = [
      [{ ACME_EMAIL: 'not-an-email' }, 'ACME_EMAIL'],
      [{ ACME_DIRECTORY_URL: 'http://ca.example.test/dir' }, 'ACME_DIRECTORY_URL'],
      [{ ACME_DOMAINS: 'bad name.test' }, 'ACME_DOMAINS'],
    ]
    for (const [vars, variable] of cases) {
      const bad = Fastify()
      apps.push(bad)
      const err = await bad.register(fastifyAcme, { env: vars, storage: memoryStorage() }).then(() => null, (e: unknown) => e)
      expect(err, variable).toMatchObject({ message: expect.stringContaining(`(set by ${variable})`) })
    }
    const noStorage = Fastify()
    apps.push(noStorage)
    const err = await noStorage.register(fastifyAcme, { env: { ACME_STORAGE: 'redis://' } }).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining('(set by ACME_STORAGE)') })
  })

  it('checks acmeHttps() options when it is called', () => {
    expect(() => acmeHttps({ alpnProtocols: 'h2' as never })).toThrow(/option "acmeHttps\.alpnProtocols" must be a non-empty list/)
    expect(() => acmeHttps({ tls: { key: 'x' } as never })).toThrow(/option "acmeHttps\.tls\.key" is not accepted/)
    expect(() => acmeHttps({ alpn: ['h2'] } as never)).toThrow(/unknown option "acmeHttps\.alpn"/)
  })

  it('keeps DNS-01 alone when ACME_HTTP_PORT is set: the variable configures HTTP-01, it does not turn it on', async () => {
    const dns01 = { name: 'none', present: async () => {}, cleanup: async () => {} }
    const route = { method: 'GET' as const, url: '/.well-known/acme-challenge/:token' }
    const env = { ACME_HTTP_PORT: '8080', ACME_HTTP_HOST: '127.0.0.1' }
    const dnsOnly = Fastify()
    apps.push(dnsOnly)
    await dnsOnly.register(fastifyAcme, { env, storage: memoryStorage(), challenges: { dns01 } })
    expect(dnsOnly.hasRoute(route)).toBe(false)
    const both = Fastify()
    apps.push(both)
    await both.register(fastifyAcme, { env, storage: memoryStorage(), challenges: { dns01, http01: { port: false } } })
    expect(both.hasRoute(route)).toBe(true)
  })

  it('does not take acme-tls/1 handshakes when TLS-ALPN-01 is off (no challenge lookup for anyone who offers it)', async () => {
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    await app.register(fastifyAcme, { env: false, storage: memoryStorage(), domains: ['alpn-off.example.test'], challenges: { http01: { port: false } } })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'alpn-off.example.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => {
        resolve(`negotiated ${String(socket.alpnProtocol)}`)
        socket.destroy()
      })
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    })
    expect(outcome).toBe('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
  })

  it('refuses a second registration on one instance', async () => {
    const app = Fastify()
    apps.push(app)
    await app.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: { port: false } } })
    const err = await app.register(fastifyAcme, { env: false, storage: memoryStorage() }).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_ALREADY_REGISTERED' })
  })

  it('refuses, with HTTP-01 on and an ACME CA, a registration in a prefixed context (the challenge route would land under the prefix)', async () => {
    const app = Fastify()
    apps.push(app)
    const err = await app.register(async (api) => {
      await api.register(fastifyAcme, { env: false, storage: memoryStorage(), directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, challenges: { http01: { port: false } } })
    }, { prefix: '/api' }).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining('"/api"') })
    expect((err as Error).message).toContain('/api/.well-known/acme-challenge/:token')
    // the local CA asks for no challenge (it was refused too), and without HTTP-01 there is no route to misplace
    const local = Fastify()
    apps.push(local)
    await local.register(async (api) => {
      await api.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: { port: false } } })
    }, { prefix: '/api' })
    await local.ready()
    const dnsOnly = Fastify()
    apps.push(dnsOnly)
    await dnsOnly.register(async (api) => {
      await api.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: false } })
    }, { prefix: '/api' })
    await dnsOnly.ready()
  })

  it('answers HTTP-01 on the app route, checking the token alphabet and the Host', async () => {
    const app = Fastify()
    apps.push(app)
    await app.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: { port: false } } })
    await app.ready()
    const token = 'tok_' + 'a'.repeat(39)
    await app.acme.http01.present({ identifier: { type: 'dns', value: 'site.example.test' }, wildcard: false, type: 'http-01', token, keyAuthorization: `${token}.thumb` })
    const get = (url: string, host: string) => app.inject({ url, headers: { host } })
    expect((await get(`/.well-known/acme-challenge/${token}`, 'site.example.test')).body).toBe(`${token}.thumb`)
    expect((await get(`/.well-known/acme-challenge/${token}`, 'evil.example.test')).statusCode).toBe(404)
    expect((await get('/.well-known/acme-challenge/..%2F..%2Fetc%2Fpasswd', 'site.example.test')).statusCode).toBe(400)
    // Fastify itself refuses a parameter over 100 characters (maxParamLength) with 414
    expect((await get(`/.well-known/acme-challenge/${'x'.repeat(5000)}`, 'site.example.test')).statusCode).toBe(414)
  })
})
