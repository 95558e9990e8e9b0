import { startAcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { handshake, serveTls } from '../../test/tls-client.js'
import { isAcmeError } from '../errors.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager, type CertificateManager } from './manager.js'
import type { CertificateManagerOptions } from './options.js'

describe('CertificateManager against Pebble', () => {
  const { pebble } = services()
  let root: string
  const cleanups: Array<() => Promise<void>> = []

  beforeAll(async () => {
    const { getText } = await import('@fastify-acme/harness')
    root = await getText(`${pebble.managementUrl}/roots/0`, pebble.caBundle)
  })
  afterAll(async () => { for (const c of cleanups.reverse()) await c() })

  async function manager (opts: Partial<CertificateManagerOptions> = {}): Promise<{ manager: CertificateManager, address: string }> {
    const m = createCertificateManager({
      directoryUrl: pebble.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      storage: memoryStorage(),
      ...opts,
    })
    const http = await serveHttp01(m.http01)
    cleanups.push(async () => { await m.close(); await http.close() })
    return { manager: m, address: http.address }
  }

  it('obtains a single-name certificate and serves it by SNI, verified against Pebble\'s root', async () => {
    const { manager: m, address } = await manager()
    const name = await pointName(address)
    const obtained: unknown[] = []
    m.on('obtained', (e) => obtained.push(e))
    await m.manage([name])
    const tls = await serveTls(m)
    cleanups.push(tls.close)
    const leaf = await handshake(tls.port, name, root)
    expect(leaf.subjectAltName).toBe(`DNS:${name}`)
    expect(obtained).toHaveLength(1)
    const [info] = m.list()
    expect(info).toMatchObject({ names: [name], status: 'valid', renewal: { reason: 'ratio' } })
    expect(info!.issuer!.commonName).toMatch(/Pebble Intermediate/)
  })

  it('obtains a 3-name SAN certificate with an RSA key', async () => {
    const { manager: m, address } = await manager({ keyType: 'rsa-2048' })
    const names = [await pointName(address, 'a'), await pointName(address, 'b'), await pointName(address, 'c')]
    await m.manage([names])
    const tls = await serveTls(m)
    cleanups.push(tls.close)
    for (const name of names) {
      const leaf = await handshake(tls.port, name, root)
      expect(leaf.subjectAltName?.split(', ').sort()).toEqual(names.map((n) => `DNS:${n}`).sort())
      expect(leaf.publicKey.asymmetricKeyType).toBe('rsa')
    }
  })

  it('a second instance on the same storage serves the stored certificate without ordering', async () => {
    const storage = memoryStorage()
    const proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls })
    cleanups.push(proxy.close)
    const { manager: a, address } = await manager({ storage, directoryUrl: proxy.directoryUrl })
    const name = await pointName(address)
    await a.manage([name])
    const { manager: b } = await manager({ storage, directoryUrl: proxy.directoryUrl })
    await b.manage([name])
    expect(proxy.count('newOrder')).toBe(1)
    expect(b.list()[0]!.serial).toBe(a.list()[0]!.serial)
  })

  it('fails in under 2 s with ERR_ACME_CA_TLS when the caBundle is wrong', async () => {
    const { createTlsFixture } = await import('@fastify-acme/harness')
    const { manager: m, address } = await manager({ caBundle: createTlsFixture().caBundle })
    const name = await pointName(address)
    const started = Date.now()
    const err = await m.manage([name]).catch((e: unknown) => e)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(isAcmeError(err) && err.code).toBe('ERR_ACME_CA_TLS')
  })
})
