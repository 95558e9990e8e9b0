import { createTlsFixture, startAcmeProxy, startPebble, type AcmeProxy, type Pebble } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { X509Certificate } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { AcmeIssuer } from '../acme/issuer.js'
import { splitPemChain } from '../certificate.js'
import { generatePrivateKey } from '../keys.js'
import { silentLogger } from '../logger.js'
import { memoryStorage } from '../storage/memory.js'
import { StorageKeys, issuerKeyOf } from '../storage/keys.js'
import { createCertificateManager } from './manager.js'
import type { CertificateManagerOptions } from './options.js'

describe('accounts, profiles, chains, revocation, IP identifiers, issuer fallback', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  const cleanups: Array<() => Promise<void>> = []
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
    await proxy?.close()
  })

  async function setup (opts: Partial<CertificateManagerOptions> = {}) {
    const storage = opts.storage ?? memoryStorage()
    const manager = createCertificateManager({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, ...opts, storage })
    const http = await serveHttp01(manager.http01)
    cleanups.push(async () => { await manager.close(); await http.close() })
    return { manager, http, storage }
  }

  it('rolls the account key over: the CA accepts the new key and storage keeps it', async () => {
    const storage = memoryStorage()
    const issuer = new AcmeIssuer({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true }, { storage, solvers: [], logger: silentLogger })
    cleanups.push(() => issuer.close())
    const before = await issuer.account()
    const after = await issuer.rolloverAccountKey()
    expect(after.accountUrl).toBe(before.accountUrl)
    expect(after.accountKey).not.toBe(before.accountKey)
    expect(proxy.count('keyChange', (r) => r.status === 200)).toBe(1)
    const stored = JSON.parse(Buffer.from((await storage.get(StorageKeys.account(issuer.key, undefined)))!).toString())
    expect(stored.accountKey).toBe(after.accountKey)
  })

  it('keeps the new key when the CA switched to it but its keyChange answer was lost', async () => {
    const storage = memoryStorage()
    const issuer = new AcmeIssuer({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true }, { storage, solvers: [], logger: silentLogger })
    cleanups.push(() => issuer.close())
    await issuer.account()
    proxy.inject({ resource: 'keyChange', action: { dropAnswer: true } })
    const after = await issuer.rolloverAccountKey()
    const stored = JSON.parse(Buffer.from((await storage.get(StorageKeys.account(issuer.key, undefined)))!).toString())
    expect(stored.accountKey).toBe(after.accountKey)
    // the account works with the stored key
    const { manager, http } = await setup({ storage })
    const name = await pointName(http.address, 'rolled')
    await manager.manage([name])
    expect(manager.list()[0]!.status).toBe('valid')
  })

  it('registers again, once, when the CA no longer knows the stored account', async () => {
    const storage = memoryStorage()
    const key = StorageKeys.account(issuerKeyOf(proxy.directoryUrl), undefined)
    await storage.put(key, JSON.stringify({
      version: 1, directoryUrl: proxy.directoryUrl, accountKey: await generatePrivateKey('ec-p256'), accountUrl: `${proxy.origin}/my-account/999999`, createdAt: new Date().toISOString(),
    }))
    const { manager, http } = await setup({ storage })
    const name = await pointName(http.address, 'reacct')
    await manager.manage([name])
    expect(manager.list()[0]!.status).toBe('valid')
    const stored = JSON.parse(Buffer.from((await storage.get(key))!).toString())
    expect(stored.accountUrl).not.toMatch(/999999$/)
  })

  it('asks for the configured profile when the CA advertises it, and orders without one otherwise', async () => {
    const { manager, http } = await setup({ profile: 'shortlived' })
    const name = await pointName(http.address, 'prof')
    await manager.manage([name])
    const order = proxy.requests.filter((r) => r.resource === 'newOrder' && (r.payload as any)?.identifiers?.[0]?.value === name)
    expect((order[0]!.payload as { profile?: string }).profile).toBe('shortlived')

    const other = await setup({ profile: 'no-such-profile' })
    const name2 = await pointName(other.http.address, 'prof')
    await other.manager.manage([name2])
    const order2 = proxy.requests.filter((r) => r.resource === 'newOrder' && (r.payload as any)?.identifiers?.[0]?.value === name2)
    expect((order2[0]!.payload as { profile?: string }).profile).toBeUndefined()
  })

  it('revokes at the CA, deletes the certificate from storage and stops managing it', async () => {
    const { manager, http, storage } = await setup()
    const name = await pointName(http.address, 'revoke')
    await manager.manage([name])
    const revoked = new Promise((resolve) => manager.once('revoked', resolve))
    await manager.revoke(name)
    await revoked
    expect(proxy.count('revokeCert', (r) => r.status === 200)).toBeGreaterThanOrEqual(1)
    expect(await storage.get(StorageKeys.certificateBundle(name))).toBeNull()
    expect(manager.list()).toEqual([])
    expect(manager.secureContext(name)).toBeUndefined()
  })

  it('revoking a certificate served for a reordered list deletes it where it is stored (under its first name)', async () => {
    const { manager, http, storage } = await setup()
    const a = await pointName(http.address, 'revoke-a')
    const c = await pointName(http.address, 'revoke-c')
    await manager.manage([[a, c]])
    manager.add([[c, a]]) // served from a's certificate until its order
    await manager.revoke(c)
    expect(await storage.get(StorageKeys.certificateBundle(a))).toBeNull()
  })

  it('issues a certificate for an IP address (RFC 8738) over HTTP-01', async () => {
    const { manager, http } = await setup()
    await manager.manage([http.address])
    const leaf = new X509Certificate(manager.certificateFor(http.address)!.certificate)
    expect(leaf.subjectAltName).toBe(`IP Address:${http.address}`)
  })

  it('falls back to the next issuer when the first fails', async () => {
    const { manager, http } = await setup({
      issuers: [
        { directoryUrl: proxy.directoryUrl, caBundle: createTlsFixture().caBundle }, // untrusted: fails at once
        { directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle },
      ],
    })
    const name = await pointName(http.address, 'fallback')
    await manager.manage([name])
    expect(manager.list()[0]!.status).toBe('valid')
  })

  it('challenges.order is a preference: an enabled type it leaves out is still used (it was switched off)', async () => {
    const { manager, http } = await setup({ challenges: { order: ['tls-alpn-01'] } }) // TLS-ALPN-01 is off here; HTTP-01 is on
    const name = await pointName(http.address, 'order')
    await manager.manage([name])
    expect(manager.list()[0]!.status).toBe('valid')
  })

  it('a failure of every issuer is reported against the last one tried (it named the first)', async () => {
    const { manager, http } = await setup({
      issuers: [
        { directoryUrl: pebble.directoryUrl, caBundle: createTlsFixture().caBundle }, // untrusted: fails at once
        { directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle },
      ],
    })
    const tried: string[] = []
    manager.on('obtaining', (e) => tried.push(e.issuer))
    const failed = new Promise<{ issuer: string }>((resolve) => manager.once('failed', resolve))
    proxy.inject({ resource: 'newOrder', action: { status: 400, problemType: 'rejectedIdentifier' } })
    const name = await pointName(http.address, 'all-fail')
    await expect(manager.manage([name])).rejects.toThrow(/every issuer failed/)
    expect(tried).toHaveLength(2)
    expect(tried[0]).not.toBe(tried[1])
    expect((await failed).issuer).toBe(tried[1])
  })
})

describe('preferred chain (Pebble with alternate roots)', () => {
  let alt: Pebble
  beforeAll(async () => {
    alt = await startPebble({ dnsServer: services().challtestsrv.dnsServer, httpPort: services().pebble.httpPort, env: { PEBBLE_ALTERNATE_ROOTS: '1' } })
  })
  afterAll(async () => { await alt?.stop() })

  it('downloads the chain that ends at the preferred root', async () => {
    const { getText } = await import('@fastify-acme/harness')
    const alternateRoot = new X509Certificate(await getText(`${alt.managementUrl}/roots/1`, alt.caBundle))
    const preferred = /CN=([^\n]+)/.exec(alternateRoot.subject)![1]!
    const manager = createCertificateManager({ directoryUrl: alt.directoryUrl, caBundle: alt.caBundle, termsOfServiceAgreed: true, storage: memoryStorage(), preferredChain: preferred })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'chain')
      await manager.manage([name])
      const chain = splitPemChain(manager.certificateFor(name)!.certificate).map((c) => new X509Certificate(c))
      expect(chain.at(-1)!.issuer).toContain(preferred)
    } finally {
      await manager.close()
      await http.close()
    }
  })
})
