import { execFileSync } from 'node:child_process'
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { certIdOf } from './acme/ari.js'
import { type CertificateBundle, type KeyType, readLeaf, verifyBundle } from './certificate.js'
import { ipBytes } from './der.js'
import { createCsr, generateKey, generatePrivateKey, pkcs8Pem, spkiOf } from './keys.js'
import { createLocalIssuer } from './local-ca/index.js'
import { normalizeName } from './names.js'
import { memoryStorage } from './storage/memory.js'
import { loadX509, webCrypto } from './x509.js'

describe('hand-built DER', () => {
  it.each(['ec-p256', 'ec-p384', 'rsa-2048'] as const)('createCsr (%s) parses and verifies with @peculiar/x509, names in SAN, CN first', async (type) => {
    const x509 = loadX509()
    const names = ['a.example.test', 'b.example.test', '192.0.2.7', '2001:db8::1', `${'x'.repeat(63)}.test`]
    const key = await generatePrivateKey(type)
    const csr = new x509.Pkcs10CertificateRequest(await createCsr(names, key))
    expect(await csr.verify(webCrypto)).toBe(true)
    expect(csr.subject).toBe('CN=a.example.test')
    const san = csr.getExtension('2.5.29.17') as InstanceType<typeof x509.SubjectAlternativeNameExtension>
    expect(san.names.items.map((n) => `${n.type}:${n.value}`)).toEqual(['dns:a.example.test', 'dns:b.example.test', 'ip:192.0.2.7', 'ip:2001:db8::1', `dns:${'x'.repeat(63)}.test`])
    expect(Buffer.from(csr.publicKey.rawData).equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))).toBe(true)
  })

  it('createCsr has an empty subject when no DNS name fits a common name', async () => {
    const x509 = loadX509()
    const csr = new x509.Pkcs10CertificateRequest(await createCsr(['192.0.2.1', `${'y'.repeat(70)}.test`], await generatePrivateKey('ec-p256')))
    expect(csr.subject).toBe('')
    expect(await csr.verify(webCrypto)).toBe(true)
  })

  it('ipBytes writes IPv4, IPv6 with ::, and IPv4-mapped IPv6', () => {
    expect(ipBytes('192.0.2.7').toString('hex')).toBe('c0000207')
    expect(ipBytes('::1').toString('hex')).toBe('00000000000000000000000000000001')
    expect(ipBytes('2001:db8::8:800:200c:417a').toString('hex')).toBe('20010db8000000000008080020 0c417a'.replace(' ', ''))
    expect(ipBytes('::ffff:1.2.3.4').toString('hex')).toBe('00000000000000000000ffff01020304')
    expect(ipBytes('fe80::').toString('hex')).toBe('fe800000000000000000000000000000')
  })

  it('certIdOf gives what @peculiar/x509 reads: AKI keyIdentifier and the serial as DER INTEGER content', async () => {
    const x509 = loadX509()
    const issuer = createLocalIssuer({ storage: memoryStorage() })
    for (let i = 0; i < 20; i++) {
      const key = await generatePrivateKey('ec-p256')
      const { certificate } = await issuer.issue({ names: ['c.example.test'], csr: await createCsr(['c.example.test'], key) })
      const leaf = new x509.X509Certificate(certificate)
      const keyId = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId!
      let serial = new NodeX509(certificate).serialNumber.toLowerCase()
      if (serial.length % 2 === 1) serial = `0${serial}`
      if (Number.parseInt(serial.slice(0, 2), 16) >= 0x80) serial = `00${serial}`
      expect(certIdOf(certificate)).toBe(`${Buffer.from(keyId, 'hex').toString('base64url')}.${Buffer.from(serial, 'hex').toString('base64url')}`)
    }
  })
})

describe('verifyBundle (public key in the private key vs the leaf, in DER)', () => {
  const issuer = createLocalIssuer({ storage: memoryStorage() })
  const bundleFor = async (type: KeyType) => {
    const privateKey = await generatePrivateKey(type)
    const { certificate } = await issuer.issue({ names: ['v.example.test'], csr: await createCsr(['v.example.test'], privateKey) })
    return { version: 1, names: ['v.example.test'], certificate, privateKey } as CertificateBundle
  }
  const corrupt = (bundle: CertificateBundle, why: RegExp) => expect(() => verifyBundle(bundle)).toThrow(expect.objectContaining({ code: 'ERR_ACME_STORAGE_CORRUPT', message: expect.stringMatching(why) }))

  it.each(['ec-p256', 'ec-p384', 'rsa-2048'] as const)('accepts a %s key with its certificate, refuses another key of the same type', async (type) => {
    const bundle = await bundleFor(type)
    expect(() => verifyBundle(bundle)).not.toThrow()
    corrupt({ ...bundle, privateKey: await generatePrivateKey(type) }, /does not match/)
  })

  it('refuses a key of another type, a truncated certificate and a truncated key; accepts SEC1 and a PKCS#8 key without its public half', async () => {
    const bundle = await bundleFor('ec-p256')
    corrupt({ ...bundle, privateKey: await generatePrivateKey('ec-p384') }, /does not match/)
    corrupt({ ...bundle, privateKey: await generatePrivateKey('rsa-2048') }, /does not match/)
    corrupt({ ...bundle, certificate: bundle.certificate.slice(0, 300) }, /not a readable PEM chain/)
    corrupt({ ...bundle, privateKey: bundle.privateKey.slice(0, 120) + '\n-----END PRIVATE KEY-----\n' }, /not a readable PEM key/)
    const sec1 = createPrivateKey(bundle.privateKey).export({ type: 'sec1', format: 'pem' }) as string
    expect(() => verifyBundle({ ...bundle, privateKey: sec1 })).not.toThrow()
    // PKCS#8 without the optional [1] publicKey: the full OpenSSL check answers
    const noPublic = execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt'], { input: execFileSync('openssl', ['ec', '-no_public'], { input: sec1, stdio: ['pipe', 'pipe', 'ignore'] }) }).toString()
    expect(noPublic).toContain('BEGIN PRIVATE KEY')
    expect(() => verifyBundle({ ...bundle, privateKey: noPublic })).not.toThrow()
    corrupt({ ...(await bundleFor('ec-p256')), privateKey: noPublic }, /does not match/)
  })
})

describe('readLeaf (DER) reads what X509Certificate reads', () => {
  /** What the former X509Certificate-based readLeaf returned. */
  const viaOpenSsl = (pem: string) => {
    const cert = new NodeX509(pem)
    return {
      serial: cert.serialNumber.toLowerCase(),
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
      issuerCommonName: /CN=([^\n]+)/.exec(cert.issuer)?.[1] ?? '',
      names: (cert.subjectAltName ?? '').split(', ').filter((e) => /^(DNS|IP Address):/.test(e)).map((e) => e.startsWith('IP Address:') ? normalizeName(e.slice(11)) : e.slice(4)),
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'read-leaf-'))
  const openssl = (serial: string, days: number, san: string, issuer: string) => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
      '-subj', issuer, '-days', String(days), '-set_serial', serial, '-addext', `subjectAltName=${san}`], { stdio: 'ignore' })
    return readFileSync(join(dir, 'c.pem'), 'utf8')
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.each([
    ['a serial with its high bit set (DER sign byte), UTCTime', '0x8f00aa', 30, 'DNS:a.example.test,DNS:b.example.test', '/O=Org/CN=Test CA One'],
    ['a serial with a leading zero nibble, GeneralizedTime after 2049, IPv4 and IPv6', '0x0a0b', 365 * 40, 'DNS:x.example.test,IP:192.0.2.7,IP:2001:db8::1', '/CN=Second CA/O=After'],
    ['serial 1, no CN in the issuer, an email SAN left out', '1', 2, 'email:ops@example.test,DNS:only.example.test', '/O=No Common Name'],
  ])('%s', (_, serial, days, san, issuer) => {
    const pem = openssl(serial, days, san, issuer)
    expect(readLeaf(pem)).toEqual(viaOpenSsl(pem))
  })

  it('a local CA chain and a 20-byte random serial', async () => {
    const issuer = createLocalIssuer({ storage: memoryStorage() })
    for (let i = 0; i < 10; i++) {
      const { certificate } = await issuer.issue({ names: ['l.example.test', '192.0.2.9'], csr: await createCsr(['l.example.test', '192.0.2.9'], await generatePrivateKey('ec-p256')) })
      expect(readLeaf(certificate)).toEqual(viaOpenSsl(certificate))
    }
  })

  it('throws ERR_ACME_STORAGE_CORRUPT for no certificate and a truncated one', () => {
    expect(() => readLeaf('nothing')).toThrow(expect.objectContaining({ code: 'ERR_ACME_STORAGE_CORRUPT' }))
    const pem = openssl('7', 1, 'DNS:t.example.test', '/CN=T')
    const body = pem.split('\n').slice(1, -2).join('')
    expect(() => readLeaf(`-----BEGIN CERTIFICATE-----\n${body.slice(0, 200)}\n-----END CERTIFICATE-----\n`)).toThrow(expect.objectContaining({ code: 'ERR_ACME_STORAGE_CORRUPT' }))
  })
})

describe('keys as DER from their JWK', () => {
  it.each(['ec-p256', 'ec-p384', 'rsa-2048'] as const)('pkcs8Pem and spkiOf (%s) are byte for byte what OpenSSL exports', async (type) => {
    for (let i = 0; i < (type === 'rsa-2048' ? 5 : 40); i++) {
      const key = await generateKey(type)
      expect(pkcs8Pem(key)).toBe(key.export({ type: 'pkcs8', format: 'pem' }))
      expect(spkiOf(key).equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))).toBe(true)
    }
  })
})
