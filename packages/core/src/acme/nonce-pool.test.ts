import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { createCertificateManager } from '../manager/manager.js'
import { memoryStorage } from '../storage/memory.js'

describe('Replay-Nonce pool', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => { await proxy?.close() })

  it('never signs two requests with one nonce, so concurrent orders cause no badNonce', async () => {
    const manager = createCertificateManager({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage() })
    const http = await serveHttp01(manager.http01)
    try {
      const names = await Promise.all([1, 2, 3, 4].map(() => pointName(http.address, 'nonce')))
      await manager.manage(names.map((n) => [n]))
      const posts = proxy.requests.filter((r) => r.method === 'POST')
      const nonces = posts.map((r) => r.protected?.nonce)
      expect(new Set(nonces).size).toBe(nonces.length)
      expect(posts.filter((r) => r.status === 400)).toEqual([])
      expect(proxy.count('newOrder')).toBe(4)
    } finally {
      await manager.close()
      await http.close()
    }
  })
})
