import { X509Certificate as NodeX509 } from 'node:crypto'
import dns from 'node:dns'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import * as x509 from '@peculiar/x509'
import acme from 'acme-client'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { splitPemChain } from '../certificate.js'
import { ErrorCodes } from '../errors.js'
import type { Storage } from '../storage/contract.js'
import { StorageKeys } from '../storage/keys.js'
import { memoryStorage } from '../storage/memory.js'
import { createLocalIssuer } from './issuer.js'
import type { LocalIssuerOptions } from './issuer.js'

const NAMES = ['example.test', '*.example.test', '127.0.0.1', '::1']

afterEach(() => { vi.restoreAllMocks() })

async function csrFor (names: string[], keyPem?: Buffer | string) {
  const key = keyPem ?? await acme.crypto.createPrivateEcdsaKey()
  const [, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: [...names] }, key)
  return { key: key.toString(), csr: csr.toString() }
}

async function issue (issuer: ReturnType<typeof createLocalIssuer>, names = NAMES, keyPem?: Buffer | string) {
  const { key, csr } = await csrFor(names, keyPem)
  const { certificate } = await issuer.issue({ names, csr })
  return { key, chain: certificate, leaf: new x509.X509Certificate(splitPemChain(certificate)[0]!) }
}

/** Serves `chain` on 127.0.0.1 and connects trusting only `root`; `identity` is the name checked. */
async function handshake (opts: { key: string, chain: string, root: string, servername?: string, identity?: string }) {
  const server = tls.createServer({ key: opts.key, cert: opts.chain })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const { port } = server.address() as AddressInfo
    return await new Promise<{ authorized: boolean, error: string | null }>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: opts.root,
        rejectUnauthorized: false,
        ...(opts.servername ? { servername: opts.servername } : {}),
        ...(opts.identity ? { checkServerIdentity: (_: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(opts.identity!, cert) } : {}),
      }, () => {
        resolve({ authorized: socket.authorized, error: socket.authorizationError?.message ?? (socket.authorizationError as unknown as string) ?? null })
        socket.end()
      })
      socket.on('error', reject)
    })
  } finally {
    server.close()
  }
}

/** memoryStorage that counts puts per key. */
function countingStorage () {
  const inner = memoryStorage()
  const puts = new Map<string, number>()
  const storage: Storage = {
    ...inner,
    async put (key, value) {
      puts.set(key, (puts.get(key) ?? 0) + 1)
      return inner.put(key, value)
    },
  }
  return { storage, puts }
}

describe('local CA issuance', () => {
  it('issues a certificate for DNS names, a wildcard and IPv4/IPv6 addresses that verifies in a real TLS handshake', async () => {
    const issuer = createLocalIssuer({ storage: memoryStorage() })
    expect(issuer.key).toBe('local')
    expect(issuer.directoryUrl).toBe('local')
    const { key, chain } = await issue(issuer)
    const root = await issuer.rootCertificate()

    for (const target of [
      { servername: 'foo.example.test' },
      { servername: 'example.test' },
      {}, // IPv4: no SNI, the IP is checked against the SAN
      { identity: '::1' },
    ]) {
      expect(await handshake({ key, chain, root, ...target }), JSON.stringify(target)).toEqual({ authorized: true, error: null })
    }
    for (const identity of ['other.test', 'a.foo.example.test', '127.0.0.2']) {
      expect((await handshake({ key, chain, root, identity })).authorized, identity).toBe(false)
    }
    const otherRoot = await createLocalIssuer({ storage: memoryStorage() }).rootCertificate()
    expect(await handshake({ key, chain, root: otherRoot, servername: 'example.test' })).toMatchObject({ authorized: false })
  })

  it('returns leaf + intermediate, with the leaf profile of a TLS server certificate', async () => {
    const issuer = createLocalIssuer({ storage: memoryStorage() })
    const before = Date.now()
    const { chain, leaf } = await issue(issuer)
    const [leafPem, intermediatePem, extra] = splitPemChain(chain)
    expect(extra).toBeUndefined()
    const intermediate = new x509.X509Certificate(intermediatePem!)
    const root = new x509.X509Certificate(await issuer.rootCertificate())
    expect(new NodeX509(intermediatePem!).checkIssued(new NodeX509(root.toString('pem')))).toBe(true)
    expect(new NodeX509(leafPem!).checkIssued(new NodeX509(intermediatePem!))).toBe(true)
    expect(root.subject).toMatch(/^CN=fastify-acme Local Authority - \d{4} ECC Root$/)
    expect(intermediate.subject).toBe('CN=fastify-acme Local Authority - ECC Intermediate')

    expect(leaf.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/)
    // Node 20 prints IPv6 SANs uncompressed
    expect(new NodeX509(leafPem!).subjectAltName).toBe('DNS:example.test, DNS:*.example.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature)
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth])
    expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false)
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId)
      .toBe(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId)
    // backdated a minute for clock skew; 12 hours by default (UTCTime has second precision)
    expect(leaf.notBefore.getTime()).toBeGreaterThan(before - 62_000)
    expect(leaf.notBefore.getTime()).toBeLessThanOrEqual(before - 59_000)
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBeGreaterThan(12 * 3_600_000 + 58_000)
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBeLessThanOrEqual(12 * 3_600_000 + 61_000)
  })

  it.each([
    ['EC P-384', () => acme.crypto.createPrivateEcdsaKey('P-384'), x509.KeyUsageFlags.digitalSignature],
    ['RSA 2048', () => acme.crypto.createPrivateRsaKey(2048), x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment],
    ['RSA 4096', () => acme.crypto.createPrivateRsaKey(4096), x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment],
  ])('certifies a %s key', async (_, makeKey, usages) => {
    const issuer = createLocalIssuer({ storage: memoryStorage() })
    const { key, chain, leaf } = await issue(issuer, ['rsa.example.test'], await makeKey())
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(usages)
    expect(await handshake({ key, chain, root: await issuer.rootCertificate(), servername: 'rsa.example.test' })).toEqual({ authorized: true, error: null })
  })

  it('needs no network: no socket is opened and no name is resolved', async () => {
    const connect = vi.spyOn(net.Socket.prototype, 'connect')
    const lookup = vi.spyOn(dns, 'lookup')
    const { storage } = countingStorage()
    const issuer = createLocalIssuer({ storage })
    await issue(issuer)
    await issuer.rootCertificate()
    expect(connect).not.toHaveBeenCalled()
    expect(lookup).not.toHaveBeenCalled()
  })
})

describe('local CA refusals', () => {
  const issuer = createLocalIssuer({ storage: memoryStorage() })

  function flipLastByte (pem: string): string {
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
    der[der.length - 1]! ^= 0x01
    return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`
  }

  it.each<[string, () => Promise<{ names: string[], csr: string }>, RegExp]>([
    ['a CSR with a bad signature', async () => ({ names: ['a.test'], csr: flipLastByte((await csrFor(['a.test'])).csr) }), /signature does not verify/],
    ['garbage instead of a CSR', async () => ({ names: ['a.test'], csr: 'hello' }), /not a PEM PKCS#10/],
    ['a CSR for other names', async () => ({ names: ['a.test'], csr: (await csrFor(['b.test'])).csr }), /names \[b\.test\] instead of \[a\.test\]/],
    ['a CSR missing a name', async () => ({ names: ['a.test', 'b.test'], csr: (await csrFor(['a.test'])).csr }), /instead of/],
    ['a 1024-bit RSA key', async () => ({ names: ['a.test'], csr: (await csrFor(['a.test'], await acme.crypto.createPrivateRsaKey(1024))).csr }), /rsa key is not supported/],
  ])('refuses %s with ERR_ACME_CA_PROBLEM (badCSR, not retryable)', async (_, request, message) => {
    await expect(issuer.issue(await request())).rejects.toMatchObject({
      code: ErrorCodes.CA_PROBLEM,
      problemType: 'urn:ietf:params:acme:error:badCSR',
      retryable: false,
      message: expect.stringMatching(message),
    })
  })

  it('refuses an invalid name with ERR_ACME_INVALID_IDENTIFIER, and an aborted request with ERR_ACME_ABORTED', async () => {
    const { csr } = await csrFor(['a.test'])
    await expect(issuer.issue({ names: ['a..test'], csr })).rejects.toMatchObject({ code: ErrorCodes.INVALID_IDENTIFIER })
    await expect(issuer.issue({ names: ['a.test'], csr, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
  })

  it.each<[string, Partial<LocalIssuerOptions>]>([
    ['storage', { storage: undefined }],
    ['leafLifetimeMs', { leafLifetimeMs: -1 }],
    ['leafLifetimeMs', { leafLifetimeMs: 8 * 86_400_000 }],
    ['intermediateLifetimeMs', { intermediateLifetimeMs: 4000 * 86_400_000 }],
    ['rootLifetimeMs', { rootLifetimeMs: Number.NaN }],
    ['commonNamePrefix', { commonNamePrefix: '' }],
    ['commonNamePrefix', { commonNamePrefix: 'x'.repeat(41) }],
  ])('refuses a bad %s with ERR_ACME_INVALID_OPTION', (option, opts) => {
    expect(() => createLocalIssuer({ storage: memoryStorage(), ...opts })).toThrow(expect.objectContaining({
      code: ErrorCodes.INVALID_OPTION,
      message: expect.stringContaining(option),
    }))
  })

  it('refuses a corrupt stored root with ERR_ACME_STORAGE_CORRUPT instead of replacing it; re-issues a corrupt intermediate', async () => {
    const storage = memoryStorage()
    await storage.put(StorageKeys.localCa('root'), '{"certificate":"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----"}')
    await expect(issue(createLocalIssuer({ storage }))).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CORRUPT })
    await expect(createLocalIssuer({ storage }).rootCertificate()).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CORRUPT })

    const healthy = countingStorage()
    const first = createLocalIssuer({ storage: healthy.storage })
    const root = await first.rootCertificate()
    await healthy.storage.put(StorageKeys.localCa('intermediate'), 'not json')
    const { key, chain } = await issue(createLocalIssuer({ storage: healthy.storage }))
    expect(healthy.puts.get(StorageKeys.localCa('intermediate'))).toBe(2)
    expect(await handshake({ key, chain, root, servername: 'example.test' })).toEqual({ authorized: true, error: null })
  })
})

describe('local CA in a cluster', () => {
  it('two instances starting together on one storage create one root and one intermediate', async () => {
    const { storage, puts } = countingStorage()
    const a = createLocalIssuer({ storage })
    const b = createLocalIssuer({ storage })
    const [rootA, rootB, fromA, fromB] = await Promise.all([a.rootCertificate(), b.rootCertificate(), issue(a), issue(b)])
    expect(rootA).toBe(rootB)
    expect(puts.get(StorageKeys.localCa('root'))).toBe(1)
    expect(puts.get(StorageKeys.localCa('intermediate'))).toBe(1)
    expect(splitPemChain(fromA.chain)[1]).toBe(splitPemChain(fromB.chain)[1])
    expect(await handshake({ key: fromB.key, chain: fromB.chain, root: rootA, servername: 'x.example.test' })).toEqual({ authorized: true, error: null })
    // a restarted instance finds the same root
    expect(await createLocalIssuer({ storage }).rootCertificate()).toBe(rootA)
  })

  it('rotates the intermediate near expiry, once per cluster, and new leaves still verify against the same root', async () => {
    const { storage, puts } = countingStorage()
    const opts = { storage, intermediateLifetimeMs: 6000, leafLifetimeMs: 2000 }
    const a = createLocalIssuer(opts)
    const root = await a.rootCertificate()
    const first = await issue(a)
    const firstIntermediate = new x509.X509Certificate(splitPemChain(first.chain)[1]!)
    // rotation is due once less than max(1/3 of 6 s, one 2 s leaf) remains
    await sleep(firstIntermediate.notAfter.getTime() - 2000 - Date.now() + 50)

    const [second, fromB] = await Promise.all([issue(a), issue(createLocalIssuer(opts))])
    const secondIntermediate = splitPemChain(second.chain)[1]
    expect(secondIntermediate).not.toBe(splitPemChain(first.chain)[1])
    expect(splitPemChain(fromB.chain)[1]).toBe(secondIntermediate)
    expect(puts.get(StorageKeys.localCa('intermediate'))).toBe(2)
    expect(puts.get(StorageKeys.localCa('root'))).toBe(1)
    expect(await a.rootCertificate()).toBe(root)
    expect(await handshake({ key: second.key, chain: second.chain, root, servername: 'example.test' })).toEqual({ authorized: true, error: null })
    // a leaf never outlives the intermediate that signed it
    expect(second.leaf.notAfter.getTime()).toBeLessThanOrEqual(new x509.X509Certificate(secondIntermediate!).notAfter.getTime())
  })

  it('a root replaced in storage (deleted to rotate it) is taken up by running instances, which then sign with it', async () => {
    const { storage } = countingStorage()
    const opts = { storage, intermediateLifetimeMs: 60_000, leafLifetimeMs: 2000 } // the stored root is re-read every 500 ms
    const a = createLocalIssuer(opts)
    const oldRoot = await a.rootCertificate()
    await issue(a)
    await storage.delete(StorageKeys.localCa('root'))
    await storage.delete(StorageKeys.localCa('intermediate'))
    const c = createLocalIssuer(opts) // e.g. a restarted instance: creates the new root and intermediate
    const newRoot = await c.rootCertificate()
    expect(newRoot).not.toBe(oldRoot)
    const fromC = await issue(c)
    await sleep(600)
    const fromA = await issue(a)
    expect(splitPemChain(fromA.chain)[1]).toBe(splitPemChain(fromC.chain)[1]) // the new intermediate, not overwritten
    expect(await a.rootCertificate()).toBe(newRoot)
    expect(await handshake({ key: fromA.key, chain: fromA.chain, root: newRoot, servername: 'example.test' })).toEqual({ authorized: true, error: null })
  })
})
