import { X509Certificate, createPrivateKey } from 'node:crypto'
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

/** Parses the leaf of a PEM chain. Throws ERR_ACME_STORAGE_CORRUPT on anything unreadable. */
export function readLeaf (chainPem: string): LeafFacts {
  const leafPem = splitPemChain(chainPem)[0]
  if (!leafPem) throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, 'no PEM certificate found')
  let cert: X509Certificate
  try {
    cert = new X509Certificate(leafPem)
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, 'unreadable PEM certificate', { cause })
  }
  const names = (cert.subjectAltName ?? '').split(', ').filter(Boolean).map((entry) => {
    const [kind, ...rest] = entry.split(':')
    const value = rest.join(':')
    return kind === 'IP Address' ? normalizeName(value) : value
  })
  return {
    serial: cert.serialNumber.toLowerCase(),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    issuerCommonName: /CN=([^\n]+)/.exec(cert.issuer)?.[1] ?? '',
    names,
  }
}

/**
 * Checks a bundle read from storage before it is served: the chain parses and the private key
 * belongs to the leaf. Throws ERR_ACME_STORAGE_CORRUPT naming what is wrong.
 */
export function verifyBundle (bundle: CertificateBundle): void {
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(splitPemChain(bundle.certificate)[0] ?? '')
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored certificate for ${bundle.names?.[0]} is not a readable PEM chain`, { cause })
  }
  let matches = false
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(bundle.privateKey))
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored private key for ${bundle.names?.[0]} is not a readable PEM key`, { cause })
  }
  if (!matches) throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored private key for ${bundle.names?.[0]} does not match its certificate`)
}
