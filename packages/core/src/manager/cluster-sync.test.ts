import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { memoryStorage } from '../storage/memory.js'
import { issuerKeyOf } from '../storage/keys.js'
import { createCertificateManager, type CertificateManager } from './manager.js'

/*
 * Instances sharing a storage without a change feed (memory here, fs or S3 in production):
 * the maintenance sweep must still bring every instance to what storage holds.
 */
describe('cluster sync without a change feed', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  const managers: CertificateManager[] = []
  const closers: Array<() => Promise<void>> = []
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => {
    for (const m of managers) await m.close()
    for (const c of closers) await c()
    await proxy?.close()
  })

  function manager (storage: ReturnType<typeof memoryStorage>, directoryUrl: string, checkIntervalMs = 600_000) {
    const m = createCertificateManager({ directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage, renewal: { checkIntervalMs } })
    managers.push(m)
    return m
  }

  /** a answers HTTP-01 and obtains the certificate; b (checking every 400 ms) loads it from its view of the storage */
  async function twoInstances (aStorage: ReturnType<typeof memoryStorage>, bStorage: ReturnType<typeof memoryStorage>, label: string) {
    const a = manager(aStorage, proxy.directoryUrl)
    const b = manager(bStorage, proxy.directoryUrl, 400)
    const http = await serveHttp01(a.http01)
    closers.push(http.close)
    const name = await pointName(http.address, label)
    await a.manage([name])
    await b.manage([name])
    return { a, b, name }
  }

  it('replaces a stored certificate from a CA that is no longer configured (staging -> production)', async () => {
    const storage = memoryStorage()
    const staging = manager(storage, proxy.directoryUrl)
    const http = await serveHttp01(staging.http01)
    closers.push(http.close)
    const name = await pointName(http.address, 'switch')
    await staging.manage([name])
    expect(staging.list()[0]!.issuer!.key).toBe(issuerKeyOf(proxy.directoryUrl))

    const production = manager(storage, pebble.directoryUrl) // another directory URL: another CA
    const http2 = await serveHttp01(production.http01)
    closers.push(http2.close)
    const { challtestsrvClient } = await import('@fastify-acme/harness')
    await challtestsrvClient(services().challtestsrv.managementUrl, services().challtestsrv.dnsServer).addA(name, [http2.address])
    await production.manage([name])
    expect(production.list()[0]!.issuer!.key).toBe(issuerKeyOf(pebble.directoryUrl))
  })

  it('serves a certificate another instance stored while this one is in backoff, and forgets its failure', async () => {
    const storage = memoryStorage()
    // b's view of the same storage, with writes failing while `broken`: its storage check fails
    let broken = false
    const bStorage = Object.create(storage) as typeof storage
    bStorage.put = (key, value) => broken ? Promise.reject(new Error('disk full')) : storage.put(key, value)
    const { a, b, name } = await twoInstances(storage, bStorage, 'backoff')
    broken = true
    await expect(b.renew(name, { force: true })).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
    broken = false
    expect(b.list()[0]).toMatchObject({ lastError: { code: 'ERR_ACME_STORAGE' }, nextAttemptAt: expect.any(Date) })
    b.start()

    const updated = new Promise<{ serial: string }>((resolve) => b.once('updated', resolve))
    const renewed = await a.renew(name, { force: true })
    // within a check (400 ms here), not when b's 30 s storage retry time comes
    expect((await updated).serial).toBe(renewed.serial)
    const [info] = b.list()
    expect(info!.lastError).toBeUndefined()
    expect(info!.nextAttemptAt).toBeUndefined()
  })

  it('picks up a forced renewal and replaces a revoked certificate at the next sweep', async () => {
    const storage = memoryStorage()
    const { a, b, name } = await twoInstances(storage, storage, 'sweep')
    b.start()
    const first = b.list()[0]!.serial

    const updated = new Promise<{ serial: string }>((resolve) => b.once('updated', resolve))
    const renewed = await a.renew(name, { force: true })
    expect((await updated).serial).toBe(renewed.serial)
    expect(renewed.serial).not.toBe(first)

    // A revokes (and deletes); B keeps serving while it orders a replacement, once
    const orders = proxy.count('newOrder')
    const replaced = new Promise<{ serial: string }>((resolve) => b.once('renewed', resolve))
    await a.revoke(name)
    const replacement = await replaced
    expect(replacement.serial).not.toBe(renewed.serial)
    expect(proxy.count('newOrder')).toBe(orders + 1)
    expect(b.list()[0]!.serial).toBe(replacement.serial)
  })

  it('picks up a newer certificate that expires sooner than the one it serves (a forced renewal with a shorter lifetime)', async () => {
    const storage = memoryStorage()
    const local = (leafLifetimeMs: number, checkIntervalMs = 600_000) => {
      const m = createCertificateManager({ directoryUrl: 'local', storage, localCa: { leafLifetimeMs }, renewal: { checkIntervalMs } })
      managers.push(m)
      return m
    }
    const name = 'shorter.example.test'
    await local(5 * 86400_000).manage([name])
    const b = local(5 * 86400_000, 300)
    await b.manage([name])
    b.start()
    const a = local(86400_000)
    await a.manage([name])
    const renewed = await a.renew(name, { force: true })
    expect(renewed.notAfter!.getTime()).toBeLessThan(b.list()[0]!.notAfter!.getTime())
    const deadline = Date.now() + 5000
    while (b.list()[0]!.serial !== renewed.serial && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(b.list()[0]!.serial).toBe(renewed.serial)
  })
})
