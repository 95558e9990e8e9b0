import { memoryStorage } from '@fastify-acme/core'
import { startPebble, type Pebble } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpsGet, listenAndObtain, pointName, uniqueLoopbackAddress } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

const VALIDITY_SECONDS = 10

describe('renewal without restart', () => {
  let pebble: Pebble
  beforeAll(async () => { pebble = await startPebble({ dnsServer: services().challtestsrv.dnsServer, validitySeconds: VALIDITY_SECONDS }) })
  afterAll(async () => { await pebble?.stop() })

  it(`renews a ${VALIDITY_SECONDS}-second certificate while clients keep connecting: new serial, 0 failed connections`, async () => {
    const address = uniqueLoopbackAddress()
    const name = await pointName(address, 'renew')
    const app = Fastify({ https: acmeHttps() })
    app.get('/', async () => 'ok')
    await app.register(fastifyAcme, {
      directoryUrl: pebble.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      env: false,
      domains: [name],
      storage: memoryStorage(),
      challenges: { http01: { port: pebble.httpPort, host: address } },
    })
    try {
      const renewed = new Promise<{ replaced: string | null }>((resolve) => app.acme.once('renewed', resolve))
      const port = await listenAndObtain(app, address)
      const root = await pebble.rootCertificate()
      const first = await httpsGet(address, port, name, root)
      let last = first
      let connections = 0
      let failed = 0
      const deadline = Date.now() + VALIDITY_SECONDS * 2000
      while (last.serial === first.serial && Date.now() < deadline) {
        try {
          last = await httpsGet(address, port, name, root)
          if (last.status !== 200) failed++
        } catch {
          failed++
        }
        connections++
      }
      expect(last.serial).not.toBe(first.serial)
      expect(failed).toBe(0)
      expect(connections).toBeGreaterThan(10)
      expect((await renewed).replaced).toBeTruthy()
    } finally {
      await app.close()
    }
  }, 60_000)
})
