import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { createCertificateManager } from '../manager/manager.js'
import { memoryStorage } from '../storage/memory.js'

describe('CA answers that are not what RFC 8555 says', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => { await proxy?.close() })

  const cases = [
    { what: 'an HTML page as the certificate', resource: 'certificate' as const, respond: { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>no</html>' } },
    { what: 'JSON as the certificate', resource: 'certificate' as const, respond: { status: 200, headers: { 'content-type': 'application/json' }, body: '{"certificate":true}' } },
    { what: 'an order without its Location', resource: 'newOrder' as const, respond: { status: 201, headers: { 'content-type': 'application/json' }, body: '{"status":"pending"}' } },
  ]
  for (const c of cases) {
    it(`${c.what} fails with ERR_ACME_CA_BAD_RESPONSE`, async () => {
      const manager = createCertificateManager({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage() })
      const http = await serveHttp01(manager.http01)
      try {
        const name = await pointName(http.address, 'badanswer')
        proxy.inject({ resource: c.resource, times: Number.POSITIVE_INFINITY, action: { respond: c.respond } })
        await expect(manager.manage([name])).rejects.toMatchObject({ code: 'ERR_ACME_CA_BAD_RESPONSE' })
      } finally {
        proxy.clearFaults()
        await manager.close()
        await http.close()
      }
    })
  }
})
