import { createHash, randomBytes, webcrypto } from 'node:crypto'
import tls, { type SecureContext } from 'node:tls'
import { AcmeError, ErrorCodes, describe } from '../errors.js'
import { isIpAddress, normalizeName, type Identifier } from '../names.js'
import { loadX509 } from '../x509.js'

/** The ALPN protocol a CA offers when it validates TLS-ALPN-01 (RFC 8737 §6.2). */
export const ACME_TLS_ALPN_PROTOCOL = 'acme-tls/1'

/** id-pe-acmeIdentifier (RFC 8737 §6.1): the critical extension holding SHA-256(keyAuthorization). */
export const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31'

/** What a TLS server presents to a CA connecting with ALPN `acme-tls/1` for one identifier. */
export interface TlsAlpnChallenge {
  /** PEM of the self-signed challenge certificate */
  certificate: string
  /** PEM (PKCS#8) of its ECDSA P-256 key */
  privateKey: string
  /** both, ready for SNICallback or tlsSocket.setKeyCert() */
  context: SecureContext
}

const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const HOUR_MS = 3_600_000
const subtle = webcrypto.subtle

/**
 * Builds the RFC 8737 challenge certificate for `identifier`: self-signed, ECDSA P-256 (an RSA
 * key would cost ~200 ms), subjectAltName = the identifier (a dNSName, or an iPAddress per RFC
 * 8738) and the critical acmeIdentifier extension. About 4 ms; @peculiar/x509 is imported on
 * first use. Throws ERR_ACME_INVALID_IDENTIFIER or ERR_ACME_BAD_CHALLENGE_REQUEST.
 */
export async function createTlsAlpnChallenge (identifier: Identifier, keyAuthorization: string): Promise<TlsAlpnChallenge> {
  const value = challengeName(identifier)
  if (typeof keyAuthorization !== 'string' || !KEY_AUTHORIZATION.test(keyAuthorization)) {
    throw new AcmeError(ErrorCodes.BAD_CHALLENGE_REQUEST, `key authorization must be "<token>.<thumbprint>" in base64url, got ${describe(keyAuthorization)}`)
  }
  const x509 = loadX509()
  const keys = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  // Authorization ::= OCTET STRING (SIZE (32)), DER: tag 0x04, length 0x20, SHA-256 digest
  const authorization = Buffer.concat([Buffer.from([0x04, 0x20]), createHash('sha256').update(keyAuthorization).digest()])
  const serial = randomBytes(16)
  serial[0] = (serial[0] & 0x7f) | 0x01 // positive, with no leading zero byte
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [value] }],
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 7 * 24 * HOUR_MS),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: identifier.type === 'ip' ? 'ip' : 'dns', value }]),
      new x509.Extension(ACME_IDENTIFIER_OID, true, authorization),
    ],
  }, webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1])
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey)).toString('base64')
  const privateKey = `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`
  const certificate = cert.toString('pem') + '\n'
  return { certificate, privateKey, context: tls.createSecureContext({ key: privateKey, cert: certificate }) }
}

/**
 * The SNI a CA sends when it validates `identifier` (RFC 8737 §3, RFC 8738 §6): the name itself,
 * or for an IP address its reverse-DNS name (in-addr.arpa / ip6.arpa). Key challenges by this.
 */
export function tlsAlpnServername (identifier: Identifier): string {
  const value = challengeName(identifier)
  if (identifier.type === 'dns') return value
  if (!value.includes(':')) return `${value.split('.').reverse().join('.')}.in-addr.arpa`
  const [head = '', tail] = value.split('::')
  const groups = head === '' ? [] : head.split(':')
  const rest = tail === undefined || tail === '' ? [] : tail.split(':')
  const hex = [...groups, ...Array<string>(8 - groups.length - rest.length).fill('0'), ...rest]
    .map((group) => group.padStart(4, '0')).join('')
  return `${[...hex].reverse().join('.')}.ip6.arpa`
}

/** The IP address a TLS-ALPN-01 .arpa SNI name stands for (the reverse of tlsAlpnServername), or undefined. */
export function ipOfArpaName (servername: string): string | undefined {
  const name = servername.toLowerCase().replace(/\.$/, '')
  const v4 = /^((?:\d{1,3}\.){3}\d{1,3})\.in-addr\.arpa$/.exec(name)
  if (v4) return v4[1]!.split('.').reverse().join('.')
  const v6 = /^((?:[0-9a-f]\.){31}[0-9a-f])\.ip6\.arpa$/.exec(name)
  if (!v6) return undefined
  const hex = v6[1]!.split('.').reverse().join('')
  return hex.match(/.{4}/g)!.join(':')
}

function challengeName (identifier: Identifier): string {
  if (identifier === null || typeof identifier !== 'object' || (identifier.type !== 'dns' && identifier.type !== 'ip')) {
    throw new AcmeError(ErrorCodes.INVALID_IDENTIFIER, `identifier must be { type: 'dns' | 'ip', value }, got ${describe(identifier)}`)
  }
  const value = normalizeName(identifier.value)
  if (isIpAddress(value) !== (identifier.type === 'ip')) {
    throw new AcmeError(ErrorCodes.INVALID_IDENTIFIER, `identifier ${describe(identifier.value)} is not of type ${identifier.type}`)
  }
  if (value.startsWith('*.')) {
    throw new AcmeError(ErrorCodes.INVALID_IDENTIFIER, `TLS-ALPN-01 cannot prove a wildcard (${value}); use DNS-01`)
  }
  return value
}
