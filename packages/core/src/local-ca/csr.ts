import { type KeyObject, createPublicKey, verify } from 'node:crypto'
import { promisify } from 'node:util'
import { children, content, encoded, extensionsOf, ipText, oidText, pemBlock, readElement, stringText } from '../der.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { normalizeName } from '../names.js'

const verifyAsync = promisify(verify)
const CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1'])
/** signature algorithm OID -> hash (ECDSA and RSA PKCS#1 v1.5, what ACME clients send) */
const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
}
const GENERAL_NAME_TYPES = ['otherName', 'email', 'dns', 'x400Address', 'directoryName', 'ediPartyName', 'url', 'ip', 'registeredId']

/**
 * Reads a PEM PKCS#10 request the way an ACME CA does at finalize (RFC 8555 §7.4): the
 * signature must verify, the key must be EC P-256/P-384/P-521 or RSA of at least 2048 bits,
 * and the names in it must be exactly `names`. Returns the key to certify (DER SubjectPublicKeyInfo).
 * Refusals are ERR_ACME_CA_PROBLEM with problem type badCSR, as a CA would answer.
 */
export async function readCsr (pem: string, names: string[]): Promise<{ spki: Buffer, rsa: boolean }> {
  let request: ReturnType<typeof parseRequest>
  try {
    request = parseRequest(pemBlock(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']))
  } catch (cause) {
    throw badCsr('it is not a PEM PKCS#10 certificate request', cause)
  }
  const hash = SIGNATURE_HASHES[request.algorithm]
  if (!hash) throw badCsr(`its signature algorithm ${request.algorithm} is not supported`)
  let key: ReturnType<typeof createPublicKey>
  try {
    key = publicKeyOf(request.spki)
  } catch (cause) {
    throw badCsr('its public key is unreadable', cause)
  }
  if (!await verifyAsync(hash, request.info, key, request.signature).catch(() => false)) throw badCsr('its signature does not verify')

  const details = key.asymmetricKeyDetails ?? {}
  const keyOk = key.asymmetricKeyType === 'ec'
    ? CURVES.has(details.namedCurve ?? '')
    : key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048
  if (!keyOk) throw badCsr(`its ${key.asymmetricKeyType} key is not supported (use EC P-256/P-384 or RSA >= 2048)`)

  const requested = new Set<string>()
  try {
    for (const name of request.names()) requested.add(normalizeName(name))
  } catch (cause) {
    throw badCsr(`it names something that cannot be certified: ${(cause as Error).message}`, cause)
  }
  const wanted = new Set(names)
  if (requested.size !== wanted.size || [...requested].some((name) => !wanted.has(name))) {
    throw badCsr(`it names [${[...requested].join(', ')}] instead of [${names.join(', ')}]`)
  }
  return { spki: request.spki, rsa: key.asymmetricKeyType === 'rsa' }
}

/**
 * The key of a DER SubjectPublicKeyInfo. EC keys with a named curve and RSA keys are imported
 * as JWK (~5-60 µs); OpenSSL 3 decodes the DER form in ~150 µs, on the event loop.
 */
function publicKeyOf (spki: Buffer): KeyObject {
  const [algorithm, bits] = children(spki, readElement(spki, 0))
  const [type, parameters] = algorithm ? children(spki, algorithm) : []
  if (type && bits?.tag === 0x03 && spki[bits.start] === 0) {
    const key = content(spki, bits).subarray(1)
    const oid = oidText(spki, type)
    const crv = oid === '1.2.840.10045.2.1' && parameters?.tag === 0x06 ? JWK_CURVES[oidText(spki, parameters)] : undefined
    const size = (key.length - 1) / 2
    if (crv && key[0] === 4 && size === CURVE_SIZES[crv]) {
      return createPublicKey({ format: 'jwk', key: { kty: 'EC', crv, x: key.subarray(1, 1 + size).toString('base64url'), y: key.subarray(1 + size).toString('base64url') } })
    }
    if (oid === '1.2.840.113549.1.1.1') {
      const [n, e] = children(key, readElement(key, 0))
      if (n?.tag === 0x02 && e?.tag === 0x02) {
        const unsigned = (el: typeof n) => { const b = content(key, el); return (b[0] === 0 ? b.subarray(1) : b).toString('base64url') }
        return createPublicKey({ format: 'jwk', key: { kty: 'RSA', n: unsigned(n), e: unsigned(e) } })
      }
    }
  }
  return createPublicKey({ key: spki, format: 'der', type: 'spki' })
}

const JWK_CURVES: Record<string, string> = { '1.2.840.10045.3.1.7': 'P-256', '1.3.132.0.34': 'P-384', '1.3.132.0.35': 'P-521' }
const CURVE_SIZES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 }

/**
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo SEQUENCE { version, subject Name,
 * subjectPKInfo, attributes [0] }, signatureAlgorithm, signature BIT STRING }
 */
function parseRequest (der: Buffer) {
  const [info, algorithm, signature] = children(der, readElement(der, 0))
  if (!info || !algorithm || signature?.tag !== 0x03) throw new RangeError('DER: not a certification request')
  const [, subject, spki, attributes] = children(der, info)
  if (!subject || !spki) throw new RangeError('DER: not a certification request')
  return {
    info: encoded(der, info),
    algorithm: oidText(der, children(der, algorithm)[0]!),
    signature: content(der, signature).subarray(1),
    spki: Buffer.from(encoded(der, spki)),
    /** the subject's common names, then the subjectAltName entries of the extension request */
    * names (): Generator<string> {
      for (const rdn of children(der, subject)) {
        for (const atv of children(der, rdn)) {
          const [type, value] = children(der, atv)
          if (type && value && oidText(der, type) === '2.5.4.3') yield stringText(der, value)
        }
      }
      for (const attribute of attributes?.tag === 0xa0 ? children(der, attributes) : []) {
        const [type, values] = children(der, attribute)
        if (!type || !values || oidText(der, type) !== '1.2.840.113549.1.9.14') continue
        for (const extensions of children(der, values)) {
          for (const ext of extensionsOf(der, extensions)) {
            if (ext.oid !== '2.5.29.17') continue
            for (const name of children(der, readElement(der, ext.value.start))) {
              const kind = GENERAL_NAME_TYPES[name.tag & 0x1f] ?? 'unknown'
              if (name.tag === 0x82) yield content(der, name).toString('ascii')
              else if (name.tag === 0x87) yield ipText(content(der, name))
              else throw new Error(`a ${kind} name is not supported`)
            }
          }
        }
      }
    },
  }
}

function badCsr (why: string, cause?: unknown): AcmeError {
  return new AcmeError(ErrorCodes.CA_PROBLEM, `the local CA refused the CSR: ${why}`, {
    problemType: 'urn:ietf:params:acme:error:badCSR',
    retryable: false,
    cause,
  })
}
