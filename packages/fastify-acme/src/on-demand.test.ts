import { memoryStorage, type Storage } from '@fastify-acme/core'
import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpsGet, pebbleRoot, pointName, uniqueLoopbackAddress } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

describe('on-demand TLS', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  let app: FastifyInstance
  let address: string
  let port: number
  const allowed = new Set<string>()
  let asked = 0
  let storageCalls = 0
  const base = memoryStorage()
  const storage: Storage = new Proxy(base, {
    get: (target, prop, receiver) => {
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? (...args: unknown[]) => { storageCalls++; return value.apply(target, args) } : value
    },
  })

  beforeAll(async () => {
    proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls })
    address = uniqueLoopbackAddress()
    app = Fastify({ https: acmeHttps() })
    app.get('/', async () => 'on demand')
    await app.register(fastifyAcme, {
      directoryUrl: proxy.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      env: false,
      storage,
      challenges: { http01: { port: pebble.httpPort, host: address } },
      onDemand: { allow: (name) => { asked++; return allowed.has(name) } },
    })
    await app.listen({ port: 0, host: address })
    port = (app.server.address() as { port: number }).port
  })
  afterAll(async () => { await app?.close(); await proxy?.close() })

  it('gets a certificate for an allowed name at its first handshake', async () => {
    const name = await pointName(address, 'od')
    allowed.add(name)
    const res = await httpsGet(address, port, name, await pebbleRoot())
    expect(res).toMatchObject({ status: 200, body: 'on demand' })
    expect(proxy.count('newOrder')).toBe(1)
  })

  it('shares one order between concurrent first handshakes for one name', async () => {
    const name = await pointName(address, 'odc')
    allowed.add(name)
    const before = proxy.count('newOrder')
    const root = await pebbleRoot()
    const results = await Promise.all(Array.from({ length: 8 }, () => httpsGet(address, port, name, root)))
    expect(results.every((r) => r.status === 200)).toBe(true)
    expect(proxy.count('newOrder') - before).toBe(1)
  })

  it('makes no order and touches no storage for 100 handshakes with denied names', async () => {
    const before = { orders: proxy.count('newOrder'), requests: proxy.requests.length, asked, storageCalls }
    const attempts = Array.from({ length: 100 }, () => new Promise<boolean>((resolve) => {
      const socket = tls.connect({ host: address, port, servername: `${randomBytes(6).toString('hex')}.denied.example.test`, rejectUnauthorized: false }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    }))
    const completed = await Promise.all(attempts)
    expect(completed.filter((ok) => ok)).toHaveLength(0) // no certificate to offer: every handshake is refused
    expect(proxy.count('newOrder')).toBe(before.orders)
    expect(proxy.requests.length).toBe(before.requests)
    expect(storageCalls).toBe(before.storageCalls)
    expect(asked - before.asked).toBe(100)
    expect(app.acme.list().filter((c) => c.onDemand)).toHaveLength(2)
  })
})
