import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

describe('CA faults', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => { await proxy?.close() })

  it('obeys Retry-After on 429, backs off on 503 and dropped connections, and still gets the certificate', async () => {
    const manager = createCertificateManager({
      directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage(),
    })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'fault')
      const from = proxy.requests.length
      proxy.inject({ resource: 'newOrder', action: { status: 429, retryAfter: 2 } })
      proxy.inject({ resource: 'finalize', times: 2, action: { status: 503 } })
      proxy.inject({ resource: 'authz', action: { drop: true } })
      await manager.manage([name])
      const log = proxy.requests.slice(from)
      const limited = log.find((r) => r.resource === 'newOrder' && r.status === 429)!
      const next = log.find((r) => r.at > limited.at)!
      expect(next.at - limited.at).toBeGreaterThanOrEqual(2000) // nothing at all before Retry-After
      expect(log.filter((r) => r.resource === 'finalize').map((r) => r.status)).toEqual([503, 503, 200])
      expect(log.length).toBeLessThan(30) // no tight loop
      expect(manager.list().find((c) => c.names[0] === name)?.status).toBe('valid')
    } finally {
      await manager.close()
      await http.close()
    }
  })

  it('a finalize the CA took but whose answer was lost still gives the certificate, with one order', async () => {
    const manager = createCertificateManager({
      directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage(),
    })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'lost-finalize')
      const from = proxy.requests.length
      proxy.inject({ resource: 'finalize', action: { dropAnswer: true } })
      await manager.manage([name])
      const log = proxy.requests.slice(from)
      // the retry is refused (orderNotReady: the order is processing or valid by then), and the order says it is done
      expect(log.filter((r) => r.resource === 'finalize').map((r) => r.status)).toEqual([0, 403])
      expect(log.filter((r) => r.resource === 'newOrder')).toHaveLength(1)
      expect(manager.list()[0]?.status).toBe('valid')
    } finally {
      await manager.close()
      await http.close()
    }
  })

  it('an authorization that turns deactivated fails the order at once, naming the state (it was polled for 3 minutes)', async () => {
    const manager = createCertificateManager({
      directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage(),
    })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'deactivated')
      proxy.inject({ resource: 'authz', action: { delayMs: 0 } }) // the first fetch goes through: pending
      const body = JSON.stringify({ status: 'deactivated', identifier: { type: 'dns', value: name }, challenges: [] })
      proxy.inject({ resource: 'authz', times: Infinity, action: { respond: { status: 200, headers: { 'content-type': 'application/json' }, body } } })
      const started = Date.now()
      await expect(manager.manage([name])).rejects.toThrow(`authorization for ${name} is deactivated`)
      expect(Date.now() - started).toBeLessThan(10_000)
    } finally {
      proxy.clearFaults()
      await manager.close()
      await http.close()
    }
  })

  it('a long Retry-After is not slept in the request: the failure is stored with its next attempt time', async () => {
    const manager = createCertificateManager({
      directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage(),
    })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'longra')
      proxy.inject({ resource: 'newOrder', action: { status: 429, retryAfter: 3600, problemType: 'rateLimited', detail: 'too many new orders' } })
      const failed = new Promise<{ nextAttemptAt: Date | null }>((resolve) => manager.once('failed', resolve))
      const started = Date.now()
      const err = await manager.manage([name]).catch((e: unknown) => e)
      expect(Date.now() - started).toBeLessThan(5000)
      expect(err).toMatchObject({ code: 'ERR_ACME_RATE_LIMITED' })
      const { nextAttemptAt } = await failed
      expect(nextAttemptAt!.getTime()).toBeGreaterThanOrEqual(started + 3600_000 - 1000)
      expect(manager.list()[0]!.lastError!.code).toBe('ERR_ACME_RATE_LIMITED')
    } finally {
      await manager.close()
      await http.close()
    }
  })
})

describe('failure backoff', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => { await proxy?.close() })

  it('stores the failure with its next attempt time, and no instance retries before it', async () => {
    const storage = memoryStorage()
    const options = { directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage }
    const a = createCertificateManager(options)
    const b = createCertificateManager(options)
    const http = await serveHttp01(a.http01)
    try {
      const name = await pointName(http.address, 'backoff')
      proxy.inject({ resource: 'newOrder', action: { status: 400, problemType: 'rejectedIdentifier', detail: 'policy forbids this name' } })
      const failed = new Promise<{ nextAttemptAt: Date | null }>((resolve) => a.once('failed', resolve))
      await expect(a.manage([name])).rejects.toMatchObject({ code: 'ERR_ACME_CA_PROBLEM' })
      const { nextAttemptAt } = await failed
      expect(nextAttemptAt!.getTime() - Date.now()).toBeGreaterThan(50_000) // the first step is 1 minute

      // another instance sharing the storage honours the stored backoff: no order, and it reports why
      await expect(b.manage([name])).rejects.toMatchObject({ code: 'ERR_ACME_RATE_LIMITED' })
      a.start()
      b.start()
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(proxy.count('newOrder')).toBe(1)
      expect(b.list()[0]!.lastError?.message).toContain('policy forbids this name')
      expect(b.list()[0]!.nextAttemptAt?.getTime()).toBe(nextAttemptAt!.getTime())
    } finally {
      await a.close()
      await b.close()
      await http.close()
    }
  })
})
