import { X509Certificate as NodeX509, KeyObject, createPrivateKey, randomBytes, sign, type webcrypto } from 'node:crypto'
import { promisify } from 'node:util'
import type * as X509 from '@peculiar/x509'
import { certificateFields, der, encoded, generalNames, subjectName, toPem } from '../der.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { loadX509, webCrypto } from '../x509.js'

export { loadX509, webCrypto }

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' }
const CLOCK_SKEW_MS = 60_000
const signAsync = promisify(sign)

/** A CA certificate with its signing key, ready to sign. */
export interface CaMaterial {
  /** PEM certificate */
  certificate: string
  /** PKCS#8 PEM private key */
  privateKey: string
  cert: X509.X509Certificate
  signingKey: webcrypto.CryptoKey
  /** the same key, for node:crypto (leaves are signed without @peculiar/x509) */
  key: KeyObject
  /** DER of the certificate's subject Name: the issuer of what it signs */
  subject: Buffer
  notAfter: number
  /** subject key identifier, copied into the AKI of what it signs */
  keyId: string
}

/** What a CA certificate is made from. */
export interface CaSpec {
  commonName: string
  lifetimeMs: number
  /** the signing CA; none for the self-signed root */
  parent?: CaMaterial
}

/** Creates an ECDSA P-256 CA certificate: a self-signed root (path length 1) or an intermediate (path length 0). */
export async function createCa (spec: CaSpec): Promise<CaMaterial> {
  const x509 = loadX509()
  const keys = await webCrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])
  const now = Date.now()
  const notAfter = Math.min(now + spec.lifetimeMs, spec.parent?.notAfter ?? Infinity)
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webCrypto)
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(true, spec.parent ? 0 : 1, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ski,
  ]
  if (spec.parent) extensions.push(new x509.AuthorityKeyIdentifierExtension(spec.parent.keyId))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial().toString('hex'),
    subject: [{ CN: [spec.commonName] }],
    issuer: spec.parent ? spec.parent.cert.subjectName : [{ CN: [spec.commonName] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey: spec.parent?.signingKey ?? keys.privateKey,
    signingAlgorithm: SIGNING,
    extensions,
  }, webCrypto)
  const key = KeyObject.from(keys.privateKey)
  const privateKey = key.export({ type: 'pkcs8', format: 'pem' }) as string
  return { certificate: pemOf(cert), privateKey, cert, signingKey: keys.privateKey, key, subject: subjectOf(Buffer.from(cert.rawData)), notAfter: cert.notAfter.getTime(), keyId: ski.keyId }
}

/**
 * Reads a stored CA certificate and key. Throws ERR_ACME_STORAGE_CORRUPT when either is
 * unreadable, is not a CA, or the key does not belong to the certificate.
 */
export async function readCa (stored: { certificate?: unknown, privateKey?: unknown }, what: string): Promise<CaMaterial> {
  const x509 = loadX509()
  try {
    if (typeof stored.certificate !== 'string' || typeof stored.privateKey !== 'string') throw new Error('certificate or privateKey missing')
    const key = createPrivateKey(stored.privateKey)
    if (!new NodeX509(stored.certificate).checkPrivateKey(key)) throw new Error('private key does not match the certificate')
    const cert = new x509.X509Certificate(stored.certificate)
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)
    if (!ski || !cert.getExtension(x509.BasicConstraintsExtension)?.ca) throw new Error('not a CA certificate')
    const pkcs8 = key.export({ type: 'pkcs8', format: 'der' })
    const signingKey = await webCrypto.subtle.importKey('pkcs8', pkcs8, EC_P256, false, ['sign'])
    return { certificate: stored.certificate, privateKey: stored.privateKey, cert, signingKey, key, subject: subjectOf(Buffer.from(cert.rawData)), notAfter: cert.notAfter.getTime(), keyId: ski.keyId }
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored local CA ${what} is unreadable: ${(cause as Error).message}`, { cause })
  }
}

/** Whether `ca` was signed by `parent`'s key. */
export async function signedBy (ca: CaMaterial, parent: CaMaterial): Promise<boolean> {
  return ca.cert.verify({ publicKey: parent.cert.publicKey, signatureOnly: true }, webCrypto).catch(() => false)
}

/** The leaf a CA signs: its names and public key, taken from a verified CSR. */
export interface LeafSpec {
  names: string[]
  /** DER SubjectPublicKeyInfo */
  spki: Buffer
  /** an RSA key also gets keyEncipherment (RSA key exchange) */
  rsa: boolean
  lifetimeMs: number
}

/**
 * Signs a TLS server certificate (PEM) with `ca`: SAN with the DNS names and IP addresses, EKU
 * serverAuth, KeyUsage digitalSignature (+ keyEncipherment for RSA keys), backdated a minute
 * for clock skew and never outliving the CA. Plain DER and node:crypto: a certificate rotation
 * must not block the event loop for the milliseconds an ASN.1 library takes.
 */
export async function signLeaf (ca: CaMaterial, leaf: LeafSpec): Promise<string> {
  const now = Date.now()
  // RFC 5280 §4.2.1.6: with an empty subject the SAN must be critical
  const commonName = leaf.names.find((name) => name.length <= 64)
  const extension = (oid: string, critical: boolean, value: Buffer) =>
    der.sequence(der.oid(oid), ...(critical ? [der.boolean(true)] : []), der.octets(value))
  const ecdsaWithSha256 = der.sequence(der.oid('1.2.840.10045.4.3.2'))
  const tbs = der.sequence(
    der.context(0, der.integer(2)), // v3
    der.integerBytes(randomSerial()),
    ecdsaWithSha256,
    ca.subject,
    der.sequence(der.time(new Date(now - CLOCK_SKEW_MS)), der.time(new Date(Math.min(now + leaf.lifetimeMs, ca.notAfter)))),
    subjectName(commonName),
    leaf.spki,
    der.context(3, der.sequence(
      extension('2.5.29.19', true, der.sequence()), // basicConstraints: not a CA
      extension('2.5.29.15', true, der.namedBits(0x80 | (leaf.rsa ? 0x20 : 0))), // digitalSignature (+ keyEncipherment)
      extension('2.5.29.37', false, der.sequence(der.oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
      extension('2.5.29.35', false, der.sequence(der.contextPrimitive(0, Buffer.from(ca.keyId, 'hex')))),
      extension('2.5.29.17', commonName === undefined, generalNames(leaf.names))
    ))
  )
  const signature = await signAsync('sha256', tbs, ca.key)
  return toPem(der.sequence(tbs, ecdsaWithSha256, der.bits(signature)), 'CERTIFICATE')
}

/** The DER subject Name of a certificate. */
function subjectOf (cert: Buffer): Buffer {
  return Buffer.from(encoded(cert, certificateFields(cert).subject))
}

/** PEM with a trailing newline, so certificates concatenate into a chain. */
export function pemOf (cert: X509.X509Certificate): string {
  return `${cert.toString('pem').trim()}\n`
}

/** 16 random bytes, high bit clear so the DER INTEGER stays positive at its full length. */
function randomSerial (): Buffer {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) || 0x01
  return bytes
}
