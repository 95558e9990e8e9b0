import { createPublicKey } from 'node:crypto'
import { AcmeError, ErrorCodes } from '../errors.js'
import { normalizeName } from '../names.js'
import { loadX509, webCrypto } from './certs.js'

const SAN_OID = '2.5.29.17'
const CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1'])

/**
 * Reads a PEM PKCS#10 request the way an ACME CA does at finalize (RFC 8555 §7.4): the
 * signature must verify, the key must be EC P-256/P-384/P-521 or RSA of at least 2048 bits,
 * and the names in it must be exactly `names`. Returns the key to certify (DER SubjectPublicKeyInfo).
 * Refusals are ERR_ACME_CA_PROBLEM with problem type badCSR, as a CA would answer.
 */
export async function readCsr (pem: string, names: string[]): Promise<{ spki: ArrayBuffer, rsa: boolean }> {
  const x509 = loadX509()
  let csr: InstanceType<typeof x509.Pkcs10CertificateRequest>
  try {
    csr = new x509.Pkcs10CertificateRequest(pem)
  } catch (cause) {
    throw badCsr('it is not a PEM PKCS#10 certificate request', cause)
  }
  if (!await csr.verify(webCrypto).catch(() => false)) throw badCsr('its signature does not verify')

  const spki = csr.publicKey.rawData
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' })
  const details = key.asymmetricKeyDetails ?? {}
  const keyOk = key.asymmetricKeyType === 'ec'
    ? CURVES.has(details.namedCurve ?? '')
    : key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048
  if (!keyOk) throw badCsr(`its ${key.asymmetricKeyType} key is not supported (use EC P-256/P-384 or RSA >= 2048)`)

  const requested = new Set<string>()
  try {
    for (const cn of csr.subjectName.getField('CN')) requested.add(normalizeName(cn))
    for (const ext of csr.getExtensions(SAN_OID)) {
      for (const name of new x509.SubjectAlternativeNameExtension(ext.rawData).names.items) {
        if (name.type !== 'dns' && name.type !== 'ip') throw new Error(`a ${name.type} name is not supported`)
        requested.add(normalizeName(name.value))
      }
    }
  } catch (cause) {
    throw badCsr(`it names something that cannot be certified: ${(cause as Error).message}`, cause)
  }
  const wanted = new Set(names)
  if (requested.size !== wanted.size || [...requested].some((name) => !wanted.has(name))) {
    throw badCsr(`it names [${[...requested].join(', ')}] instead of [${names.join(', ')}]`)
  }
  return { spki, rsa: key.asymmetricKeyType === 'rsa' }
}

function badCsr (why: string, cause?: unknown): AcmeError {
  return new AcmeError(ErrorCodes.CA_PROBLEM, `the local CA refused the CSR: ${why}`, {
    problemType: 'urn:ietf:params:acme:error:badCSR',
    retryable: false,
    cause,
  })
}
