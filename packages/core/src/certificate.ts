import { X509Certificate, createPrivateKey } from 'node:crypto'
import { type Element, KEY_OIDS, certificateFields, children, commonNames, content, der, encoded, extensionsOf, generalNameEntries, oidText, pemBlock, readElement, unsignedBytes } from './der.js'
import { AcmeError, ErrorCodes } from './errors.js'
import { normalizeName } from './names.js'

/** Private key algorithms for certificate (and account) keys. */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096'

/** ARI (RFC 9773) state, shared by every instance through the bundle. */
export interface AriState {
  /** the CA's suggested renewal window */
  window: { start: string, end: string }
  explanationURL?: string
  /** the random time inside the window this certificate was scheduled for (ISO) */
  selectedTime: string
  /** do not ask the CA again before this time (its Retry-After) (ISO) */
  nextCheck: string
}

/**
 * One certificate as stored: chain, private key and metadata in one value, so a reader never
 * sees a new chain with an old key. Times are ISO strings.
 */
export interface CertificateBundle {
  version: 1
  /** the names it was ordered for; the first is its primary name and storage key */
  names: string[]
  /** PEM chain: leaf first */
  certificate: string
  /** PEM private key of the leaf (PKCS#8) */
  privateKey: string
  keyType: KeyType
  issuer: {
    /** storage name of the issuer, e.g. acme-v02.api.letsencrypt.org-directory or 'local' */
    key: string
    /** the ACME directory URL, or 'local' */
    directoryUrl: string
    /** the issuing CA certificate's common name, e.g. 'Pebble Intermediate CA 1a2b3c' */
    commonName: string
  }
  /** hex serial of the leaf */
  serial: string
  notBefore: string
  notAfter: string
  /** RFC 9773 certID of the leaf (base64url AKI '.' base64url serial), for ARI and `replaces` */
  certId: string | null
  ari?: AriState
  obtainedAt: string
  /** certID of the certificate this one replaced, if any */
  replaced?: string
}

/** What a CA returned for a CSR. */
export interface IssuedCertificate {
  /** PEM chain, leaf first */
  certificate: string
}

/** Anything that turns a CSR into a certificate: an ACME CA, or the embedded local CA. */
export interface Issuer {
  /** storage name of the issuer (stable across restarts) */
  readonly key: string
  readonly directoryUrl: string
  /**
   * Obtains a certificate for `names` with `csr` (PEM). `replaces` is the certID of the
   * certificate being renewed (ACME `replaces`, RFC 9773).
   */
  issue (request: IssueRequest): Promise<IssuedCertificate>
  /** RFC 9773 renewal info for a certificate, when the issuer offers it */
  renewalInfo? (certificate: CertificateBundle, signal?: AbortSignal): Promise<RenewalInfo | null>
  revoke? (certificate: CertificateBundle, reason?: number): Promise<void>
  /** Loads what issue() will need, synchronously, so it can overlap I/O already under way. */
  prepare? (): void
  close? (): Promise<void>
}

export interface IssueRequest {
  names: string[]
  csr: string
  replaces?: string
  signal?: AbortSignal
}

export interface RenewalInfo {
  window: { start: Date, end: Date }
  explanationURL?: string
  /** when to ask again (from Retry-After) */
  retryAfter: Date
}

/** Facts read from a PEM leaf certificate. */
export interface LeafFacts {
  serial: string
  notBefore: Date
  notAfter: Date
  issuerCommonName: string
  /** DNS names and IP addresses in subjectAltName */
  names: string[]
}

/** Splits a PEM chain into its certificates. */
export function splitPemChain (pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => `${c}\n`) ?? []
}

/**
 * Parses the leaf of a PEM chain. Throws ERR_ACME_STORAGE_CORRUPT on anything unreadable.
 * Plain DER: OpenSSL 3 takes ~0.25 ms to decode a certificate (its public key goes through the
 * provider decoders), and every order and renewal reads one on the event loop.
 */
export function readLeaf (chainPem: string): LeafFacts {
  let cert: Buffer
  try {
    cert = pemBlock(chainPem, ['CERTIFICATE'])
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, 'no PEM certificate found', { cause })
  }
  try {
    const fields = certificateFields(cert)
    const [notBefore, notAfter] = children(cert, fields.validity).map((el) => timeOf(cert, el))
    if (!notBefore || !notAfter) throw new RangeError('DER: bad validity')
    const names: string[] = []
    const san = fields.extensions ? extensionsOf(cert, readElement(cert, fields.extensions.start)).find((ext) => ext.oid === '2.5.29.17') : undefined
    for (const { kind, value } of san ? generalNameEntries(cert, san.value.start) : []) {
      if (kind === 'dns') names.push(value!)
      else if (kind === 'ip') names.push(normalizeName(value!))
    }
    // the serial as X509Certificate.serialNumber gives it: lower-case hex of the value, no sign byte
    return { serial: unsignedBytes(content(cert, fields.serial)).toString('hex'), notBefore, notAfter, issuerCommonName: commonNames(cert, fields.issuer)[0] ?? '', names }
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, 'unreadable PEM certificate', { cause })
  }
}

/** UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 §4.1.2.5 has them. */
function timeOf (buf: Buffer, el: Element): Date {
  const text = content(buf, el).toString('ascii')
  const m = (el.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : el.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : null)?.exec(text)
  if (!m) throw new RangeError(`DER: unsupported time ${JSON.stringify(text)}`)
  const year = el.tag === 0x17 ? (Number(m[1]) >= 50 ? 1900 : 2000) + Number(m[1]) : Number(m[1])
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])))
}

/**
 * Checks a bundle read from storage before it is served: the leaf is a readable certificate and
 * the private key belongs to it. Throws ERR_ACME_STORAGE_CORRUPT naming what is wrong.
 *
 * The check compares the public key inside the private key (PKCS#8 and SEC1 EC keys carry the
 * point, RSA keys the modulus) with the leaf's, in DER: ~20 µs instead of the ~600 µs that
 * OpenSSL 3 takes to decode both, which is what 10,000 certificates loaded at startup cost. A
 * key without its public half gets the full OpenSSL check; a key whose secret half was damaged
 * is refused when its TLS context is built.
 */
export function verifyBundle (bundle: CertificateBundle): void {
  const name = bundle.names?.[0]
  let leaf: { algorithm: Buffer, publicKey: Buffer }
  try {
    leaf = spkiParts(certificateFields(pemBlock(bundle.certificate, ['CERTIFICATE'])).spkiBytes)
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored certificate for ${name} is not a readable PEM chain`, { cause })
  }
  let key: { algorithm: Buffer, publicKey: Buffer } | null
  try {
    key = publicHalf(bundle.privateKey)
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored private key for ${name} is not a readable PEM key`, { cause })
  }
  let matches: boolean
  if (key) {
    matches = key.algorithm.equals(leaf.algorithm) && key.publicKey.equals(leaf.publicKey)
  } else {
    try {
      matches = new X509Certificate(bundle.certificate).checkPrivateKey(createPrivateKey(bundle.privateKey))
    } catch (cause) {
      throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored private key for ${name} is not a readable PEM key`, { cause })
    }
  }
  if (!matches) throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored private key for ${name} does not match its certificate`)
}

/** SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }: the algorithm element, and the EC point or RSA modulus. */
function spkiParts (spki: Buffer): { algorithm: Buffer, publicKey: Buffer } {
  const [algorithm, bits] = children(spki, readElement(spki, 0))
  if (!algorithm || bits?.tag !== 0x03) throw new RangeError('DER: not a SubjectPublicKeyInfo')
  const key = content(spki, bits).subarray(1)
  const oid = oidText(spki, children(spki, algorithm)[0]!)
  const publicKey = oid === KEY_OIDS.rsaEncryption ? content(key, children(key, readElement(key, 0))[0]!) : key
  return { algorithm: encoded(spki, algorithm), publicKey }
}

/**
 * The algorithm element and public key (EC point, RSA modulus) held inside a PEM private key,
 * as spkiParts gives them for its certificate; null when the key does not carry them.
 */
function publicHalf (pem: string): { algorithm: Buffer, publicKey: Buffer } | null {
  if (/-----BEGIN EC PRIVATE KEY-----/.test(pem)) {
    // SEC1: the algorithm is implied by the [0] curve
    const buf = pemBlock(pem, ['EC PRIVATE KEY'])
    const fields = children(buf, readElement(buf, 0))
    const curve = fields.find((el) => el.tag === 0xa0)
    const point = fields.find((el) => el.tag === 0xa1)
    if (!curve || !point) return null
    const algorithm = der.sequence(der.oid(KEY_OIDS.ecPublicKey), encoded(buf, readElement(buf, curve.start)))
    return { algorithm, publicKey: content(buf, readElement(buf, point.start)).subarray(1) }
  }
  const buf = pemBlock(pem, ['PRIVATE KEY'])
  // PrivateKeyInfo ::= SEQUENCE { version, privateKeyAlgorithm, privateKey OCTET STRING, ... }
  const [, algorithm, inner] = children(buf, readElement(buf, 0))
  if (!algorithm || inner?.tag !== 0x04) throw new RangeError('DER: not a PKCS#8 private key')
  const oid = oidText(buf, children(buf, algorithm)[0]!)
  const key = content(buf, inner)
  const fields = children(key, readElement(key, 0))
  if (oid === KEY_OIDS.rsaEncryption) return { algorithm: encoded(buf, algorithm), publicKey: content(key, fields[1]!) } // RSAPrivateKey: version, modulus, ...
  if (oid !== KEY_OIDS.ecPublicKey) return null
  const point = fields.find((el) => el.tag === 0xa1) // ECPrivateKey [1] publicKey BIT STRING
  return point ? { algorithm: encoded(buf, algorithm), publicKey: content(key, readElement(key, point.start)).subarray(1) } : null
}
