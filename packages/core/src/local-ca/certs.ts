import { X509Certificate as NodeX509, KeyObject, createPrivateKey, randomBytes, type webcrypto } from 'node:crypto'
import type * as X509 from '@peculiar/x509'
import { AcmeError, ErrorCodes } from '../errors.js'
import { isIpAddress } from '../names.js'
import { loadX509, webCrypto } from '../x509.js'

export { loadX509, webCrypto }

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' }
const CLOCK_SKEW_MS = 60_000

/** A CA certificate with its signing key, ready to sign. */
export interface CaMaterial {
  /** PEM certificate */
  certificate: string
  /** PKCS#8 PEM private key */
  privateKey: string
  cert: X509.X509Certificate
  signingKey: webcrypto.CryptoKey
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
    serialNumber: randomSerial(),
    subject: [{ CN: [spec.commonName] }],
    issuer: spec.parent ? spec.parent.cert.subjectName : [{ CN: [spec.commonName] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey: spec.parent?.signingKey ?? keys.privateKey,
    signingAlgorithm: SIGNING,
    extensions,
  }, webCrypto)
  const privateKey = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string
  return { certificate: pemOf(cert), privateKey, cert, signingKey: keys.privateKey, notAfter: cert.notAfter.getTime(), keyId: ski.keyId }
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
    const der = key.export({ type: 'pkcs8', format: 'der' })
    const signingKey = await webCrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign'])
    return { certificate: stored.certificate, privateKey: stored.privateKey, cert, signingKey, notAfter: cert.notAfter.getTime(), keyId: ski.keyId }
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
  spki: ArrayBuffer
  /** an RSA key also gets keyEncipherment (RSA key exchange) */
  rsa: boolean
  lifetimeMs: number
}

/**
 * Signs a TLS server certificate with `ca`: SAN with the DNS names and IP addresses, EKU
 * serverAuth, KeyUsage digitalSignature (+ keyEncipherment for RSA keys), backdated a minute
 * for clock skew and never outliving the CA.
 */
export async function signLeaf (ca: CaMaterial, leaf: LeafSpec): Promise<X509.X509Certificate> {
  const x509 = loadX509()
  const now = Date.now()
  const usages = x509.KeyUsageFlags.digitalSignature | (leaf.rsa ? x509.KeyUsageFlags.keyEncipherment : 0)
  // RFC 5280 §4.2.1.6: with an empty subject the SAN must be critical
  const commonName = leaf.names.find((name) => name.length <= 64)
  const san = new x509.SubjectAlternativeNameExtension(
    leaf.names.map((value) => ({ type: isIpAddress(value) ? 'ip' : 'dns', value })),
    commonName === undefined
  )
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: commonName === undefined ? [] : [{ CN: [commonName] }],
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(Math.min(now + leaf.lifetimeMs, ca.notAfter)),
    publicKey: leaf.spki,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.AuthorityKeyIdentifierExtension(ca.keyId),
      san,
    ],
  }, webCrypto)
}

/** PEM with a trailing newline, so certificates concatenate into a chain. */
export function pemOf (cert: X509.X509Certificate): string {
  return `${cert.toString('pem').trim()}\n`
}

/** 16 random bytes, high bit clear so the DER INTEGER stays positive at its full length. */
function randomSerial (): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) || 0x01
  return bytes.toString('hex')
}
