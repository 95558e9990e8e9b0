import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

describe('ARI (RFC 9773) through the proxy', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => { await proxy?.close() })

  it('renews inside the window the CA suggests, and the new order carries `replaces`', async () => {
    const far = { start: new Date(Date.now() + 30 * 86400_000), end: new Date(Date.now() + 31 * 86400_000), retryAfterSeconds: 1 }
    proxy.setRenewalInfo('*', far)
    const manager = createCertificateManager({
      directoryUrl: proxy.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      storage: memoryStorage(),
      renewal: { checkIntervalMs: 1000 }, // ARI checks may come as often as the checks (else at most once a minute)
    })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'ari')
      await manager.manage([name])
      manager.start()
      const [first] = manager.list()
      const certId = proxy.certIdOf(manager.certificateFor(name)!.certificate)

      // the CA moves this certificate's window to the next seconds (as after a mass revocation)
      const soon = { start: new Date(Date.now() + 1500), end: new Date(Date.now() + 2500), retryAfterSeconds: 1 }
      proxy.setRenewalInfo(certId, soon)
      const renewed = await new Promise<{ replaced: string | null }>((resolve) => manager.once('renewed', resolve))
      expect(renewed.replaced).toBe(certId)
      expect(Date.now()).toBeGreaterThanOrEqual(soon.start.getTime() - 50)

      const orders = proxy.requests.filter((r) => r.resource === 'newOrder' && r.status === 201)
      expect(orders).toHaveLength(2)
      expect((orders[1]!.payload as { replaces?: string }).replaces).toBe(certId)
      expect((orders[0]!.payload as { replaces?: string }).replaces).toBeUndefined()
      expect(first!.serial).not.toBe(manager.list()[0]!.serial)
    } finally {
      await manager.close()
      await http.close()
    }
  })

  it('reports ARI as the reason and the chosen time inside the window', async () => {
    const window = { start: new Date(Date.now() + 10 * 86400_000), end: new Date(Date.now() + 11 * 86400_000) }
    proxy.setRenewalInfo('*', window)
    const manager = createCertificateManager({
      directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage(),
    })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'ariw')
      await manager.manage([name])
      await new Promise((resolve) => setTimeout(resolve, 300)) // the ARI check runs right after the order
      const [info] = manager.list()
      expect(info!.renewal!.reason).toBe('ari')
      expect(info!.renewal!.at.getTime()).toBeGreaterThanOrEqual(window.start.getTime())
      expect(info!.renewal!.at.getTime()).toBeLessThanOrEqual(window.end.getTime())
    } finally {
      await manager.close()
      await http.close()
    }
  })

  it('sends no `replaces` to a CA without renewalInfo (RFC 9773 §5)', async () => {
    const plain = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls, ari: false })
    const manager = createCertificateManager({ directoryUrl: plain.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage() })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'noari')
      await manager.manage([name])
      await manager.renew(name, { force: true })
      const orders = plain.requests.filter((r) => r.resource === 'newOrder' && r.status === 201)
      expect(orders).toHaveLength(2)
      expect(orders.map((r) => (r.payload as { replaces?: string }).replaces)).toEqual([undefined, undefined])
    } finally {
      await manager.close()
      await http.close()
      await plain.close()
    }
  })

  it('orders again without `replaces` when the CA says the certificate was already replaced, and only then', async () => {
    proxy.setRenewalInfo('*', { start: new Date(Date.now() + 30 * 86400_000), end: new Date(Date.now() + 31 * 86400_000) })
    const manager = createCertificateManager({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage() })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'replaced')
      await manager.manage([name])
      const from = proxy.requests.length
      proxy.inject({ resource: 'newOrder', action: { status: 409, problemType: 'alreadyReplaced', detail: 'already replaced' } })
      await manager.renew(name, { force: true })
      const orders = proxy.requests.slice(from).filter((r) => r.resource === 'newOrder')
      expect(orders.map((r) => [r.status, typeof (r.payload as { replaces?: string }).replaces])).toEqual([[409, 'string'], [201, 'undefined']])
      // a refusal about the name itself is not retried without `replaces`: it would only repeat
      proxy.inject({ resource: 'newOrder', action: { status: 400, problemType: 'rejectedIdentifier', detail: 'no' } })
      await expect(manager.renew(name, { force: true })).rejects.toThrow('rejectedIdentifier')
    } finally {
      proxy.clearFaults()
      await manager.close()
      await http.close()
    }
  })
})
