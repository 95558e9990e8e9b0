import { redisStorage } from '@fastify-acme/storage-adapters/redis'
import { services } from '@fastify-acme/harness/vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { httpsGet, pebbleRoot, pointName, uniqueLoopbackAddress } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

describe('cluster on Redis', () => {
  const { pebble, redis } = services()
  const apps: FastifyInstance[] = []
  afterAll(async () => { await Promise.all(apps.map((a) => a.close())) })

  async function instance (address: string, name: string, namespace: string) {
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    app.get('/', async () => address)
    await app.register(fastifyAcme, {
      directoryUrl: pebble.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      env: false,
      domains: [name],
      storage: redisStorage({ url: redis.url, namespace }),
      challenges: { http01: { port: pebble.httpPort, host: address } },
    })
    const events: string[] = []
    for (const e of ['obtaining', 'obtained', 'renewed', 'updated'] as const) app.acme.on(e, () => events.push(e))
    return { app, events }
  }

  it('validates through the instance that did not order, which then serves the certificate', async () => {
    const namespace = `cluster-${randomUUID()}`
    const [addressA, addressB] = [uniqueLoopbackAddress(), uniqueLoopbackAddress()]
    const name = await pointName(addressB, 'cluster') // the CA validates at B
    const a = await instance(addressA, name, namespace)
    const b = await instance(addressB, name, namespace)
    await b.app.ready() // B answers HTTP-01 from storage, but does not manage yet
    const obtained = new Promise((resolve) => a.app.acme.once('obtained', resolve))
    await a.app.listen({ port: 0, host: addressA })
    await obtained
    expect(a.events).toEqual(['obtaining', 'updated', 'obtained'])

    await b.app.listen({ port: 0, host: addressB })
    await b.app.acme.manage([name])
    expect(b.events).toEqual(['updated']) // loaded from storage: no order
    const root = await pebbleRoot()
    const portB = (b.app.server.address() as { port: number }).port
    const first = await httpsGet(addressB, portB, name, root)
    expect(first.status).toBe(200)

    // A renews; B serves the new certificate without a restart (Redis pub/sub: well under a second)
    const updated = new Promise((resolve) => b.app.acme.once('updated', resolve))
    await a.app.acme.renew(name, { force: true })
    const started = Date.now()
    await updated
    expect(Date.now() - started).toBeLessThan(2000)
    const second = await httpsGet(addressB, portB, name, root)
    expect(second.serial).not.toBe(first.serial)
    expect(b.events).not.toContain('obtaining')
  })
})
