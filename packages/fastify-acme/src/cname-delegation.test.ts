import { memoryStorage } from '@fastify-acme/core'
import { rfc2136Provider } from '@fastify-acme/core/dns/rfc2136'
import { startKnot, startPebble, startUnbound, type Knot, type Pebble, type Unbound } from '@fastify-acme/harness'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { eventuallyEmpty, observedProvider } from '../test/dns-fixtures.js'
import { peerCertificate } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

const TARGET = '_acme-challenge.example.test.delegated.test'

/*
 * _acme-challenge.example.test is a CNAME into delegated.test, and the TSIG key may update
 * delegated.test only. Pebble resolves through Unbound (a recursive resolver, like a real CA's)
 * in front of Knot, because Knot answers a CNAME into another zone without the target's records
 * and Pebble's own stub resolver does not chase it.
 */
describe('CNAME delegation: DNS-01 records presented in a second zone (rfc2136, Knot, Unbound, Pebble)', () => {
  let knot: Knot
  let unbound: Unbound
  let pebble: Pebble
  let root: string
  const apps: FastifyInstance[] = []

  beforeAll(async () => {
    knot = await startKnot({
      zones: [
        { name: 'example.test', update: false, records: [`_acme-challenge CNAME ${TARGET}.`] },
        { name: 'delegated.test' },
      ],
    })
    unbound = await startUnbound({ stubs: knot.zones.map((zone) => ({ zone, server: knot.address })) })
    pebble = await startPebble({ dnsServer: unbound.address })
    root = await pebble.rootCertificate()
  })
  afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())) })
  afterAll(async () => { await Promise.all([pebble?.stop(), unbound?.stop(), knot?.stop()]) })

  it('follows _acme-challenge.example.test CNAME into delegated.test, obtains *.example.test + example.test, serves it by SNI', async () => {
    const { provider, seen } = observedProvider(rfc2136Provider({ server: knot.address, tsig: knot.tsig }), knot, 2)
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    await app.register(fastifyAcme, {
      directoryUrl: pebble.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      env: false,
      storage: memoryStorage(),
      domains: [['*.example.test', 'example.test']],
      challenges: { http01: false, tlsAlpn01: false, dns01: { provider, resolvers: [knot.address] } },
    })
    const obtained = new Promise<{ durationMs: number }>((resolve) => app.acme.once('obtained', resolve))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { durationMs } = await obtained
    console.log(`wildcard + apex order through a CNAME into delegated.test: ${durationMs} ms`)

    // both values were presented at the CNAME target, in the second zone, and none in example.test
    expect(seen.map((s) => s.fqdn)).toEqual([TARGET, TARGET])
    expect(seen[0]!.txt).toHaveLength(2)
    expect(await knot.records('example.test', '_acme-challenge')).toEqual([`_acme-challenge.example.test. 60 CNAME ${TARGET}.`])
    expect(await eventuallyEmpty(() => knot.txt(TARGET))).toEqual([])
    expect(await knot.records('delegated.test', undefined, 'TXT')).toEqual([])

    const port = (app.server.address() as { port: number }).port
    const leaf = await peerCertificate('127.0.0.1', port, 'foo.example.test', root)
    expect(leaf.subjectAltName?.split(', ').sort()).toEqual(['DNS:*.example.test', 'DNS:example.test'])
  })
})
