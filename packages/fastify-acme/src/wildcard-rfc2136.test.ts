import { memoryStorage, type Dns01Provider } from '@fastify-acme/core'
import { rfc2136Provider } from '@fastify-acme/core/dns/rfc2136'
import { startKnot, startPebble, type Knot, type Pebble } from '@fastify-acme/harness'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { eventuallyEmpty, observedProvider } from '../test/dns-fixtures.js'
import { peerCertificate } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

/*
 * Pebble's VA resolves every name through Knot here (its -dnsserver), so DNS-01 is validated
 * against the records the rfc2136 provider wrote with DNS UPDATE + TSIG.
 */
describe('wildcard certificates: DNS-01 through rfc2136 against Knot DNS and Pebble', () => {
  let knot: Knot
  let pebble: Pebble
  let root: string
  const apps: FastifyInstance[] = []

  beforeAll(async () => {
    knot = await startKnot()
    pebble = await startPebble({ dnsServer: knot.address })
    root = await pebble.rootCertificate()
  })
  afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())) })
  afterAll(async () => { await Promise.all([pebble?.stop(), knot?.stop()]) })

  async function app (provider: Dns01Provider, extra: { propagationTimeoutMs?: number } = {}, domains?: string[][]) {
    const instance = Fastify({ https: acmeHttps() })
    apps.push(instance)
    instance.get('/', async () => 'wildcard')
    await instance.register(fastifyAcme, {
      directoryUrl: pebble.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      env: false,
      storage: memoryStorage(),
      ...(domains ? { domains } : {}),
      challenges: { http01: false, tlsAlpn01: false, dns01: { provider, resolvers: [knot.address], ...extra } },
    })
    return instance
  }

  it('obtains *.example.test + example.test (wildcard, rfc2136) and serves it by SNI for any single-label subdomain', async () => {
    const rfc2136 = rfc2136Provider({ server: knot.address, tsig: knot.tsig })
    const { provider, seen } = observedProvider(rfc2136, knot, 2)
    const server = await app(provider, {}, [['*.example.test', 'example.test']])
    const obtained = new Promise<{ durationMs: number }>((resolve) => server.acme.once('obtained', resolve))
    const started = Date.now()
    await server.listen({ port: 0, host: '127.0.0.1' })
    const { durationMs } = await obtained
    console.log(`wildcard + apex order through rfc2136/Knot/Pebble: ${durationMs} ms (listen to obtained: ${Date.now() - started} ms)`)

    // apex and wildcard shared _acme-challenge.example.test, both values at once
    expect(seen).toHaveLength(2)
    for (const s of seen) expect(s).toMatchObject({ fqdn: '_acme-challenge.example.test', txt: [expect.any(String), expect.any(String)] })
    expect(new Set(seen[0]!.txt).size).toBe(2)
    expect(await eventuallyEmpty(() => knot.txt('_acme-challenge.example.test'))).toEqual([])

    const port = (server.server.address() as { port: number }).port
    for (const name of ['foo.example.test', 'bar.example.test', 'example.test']) {
      const leaf = await peerCertificate('127.0.0.1', port, name, root)
      expect(leaf.subjectAltName?.split(', ').sort()).toEqual(['DNS:*.example.test', 'DNS:example.test'])
      expect(leaf.checkHost(name)).toBe(name === 'example.test' ? name : '*.example.test')
    }
    // a wildcard covers one label only: no certificate for a.b.example.test
    await expect(peerCertificate('127.0.0.1', port, 'a.b.example.test', root)).rejects.toThrow()
    expect(server.acme.list()).toMatchObject([{ names: ['*.example.test', 'example.test'], status: 'valid' }])
  })

  it('cleans up every TXT record when the order fails (one authorization invalid, rfc2136)', async () => {
    const rfc2136 = rfc2136Provider({ server: knot.address, tsig: knot.tsig })
    // presents a wrong value for bad.example.test, so Pebble finds the record but not the right value
    const wrongFor = (fqdn: string, value: string) => fqdn === '_acme-challenge.bad.example.test' ? `wrong-${value}` : value
    const mangling: Dns01Provider = {
      name: 'rfc2136',
      present: (fqdn, value, signal) => rfc2136.present(fqdn, wrongFor(fqdn, value), signal),
      cleanup: (fqdn, value, signal) => rfc2136.cleanup(fqdn, wrongFor(fqdn, value), signal),
    }
    const { provider, seen } = observedProvider(mangling, knot, 2)
    const server = await app(provider, { propagationTimeoutMs: 0 })
    await server.listen({ port: 0, host: '127.0.0.1' })
    const err = await server.acme.manage([['good.example.test', 'bad.example.test']]).catch((e: unknown) => e) as Error & { code?: string }
    expect(err.code).toBe('ERR_ACME_CHALLENGE_FAILED')
    expect(err.message).toMatch(/bad\.example\.test is invalid \(dns-01\)/)
    // both records were there while the CA validated, and both are gone after the failure
    expect(seen.map((s) => s.fqdn).sort()).toEqual(['_acme-challenge.bad.example.test', '_acme-challenge.good.example.test'])
    expect(seen.find((s) => s.fqdn.includes('.bad.'))!.txt[0]).toMatch(/^wrong-/)
    expect(await eventuallyEmpty(() => knot.txt('_acme-challenge.good.example.test'))).toEqual([])
    expect(await eventuallyEmpty(() => knot.txt('_acme-challenge.bad.example.test'))).toEqual([])
    expect(await knot.records('example.test', undefined, 'TXT')).toEqual([])
  })
})
