import { type KeyObject, createPublicKey, verify } from 'node:crypto'
import { promisify } from 'node:util'
import { EC_CURVES, KEY_OIDS, children, commonNames, content, encoded, extensionsOf, generalNameEntries, oidText, pemBlock, readElement, unsignedBytes } from '../der.js'
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
    const curveOid = oid === KEY_OIDS.ecPublicKey && parameters?.tag === 0x06 ? oidText(spki, parameters) : undefined
    const [crv, curve] = Object.entries(EC_CURVES).find(([, c]) => c.oid === curveOid) ?? []
    if (crv && curve && key[0] === 4 && key.length === 1 + 2 * curve.size) {
      const [x, y] = [key.subarray(1, 1 + curve.size), key.subarray(1 + curve.size)]
      return createPublicKey({ format: 'jwk', key: { kty: 'EC', crv, x: x.toString('base64url'), y: y.toString('base64url') } })
    }
    if (oid === KEY_OIDS.rsaEncryption) {
      const [n, e] = children(key, readElement(key, 0))
      if (n?.tag === 0x02 && e?.tag === 0x02) {
        const unsigned = (el: typeof n) => unsignedBytes(content(key, el)).toString('base64url')
        return createPublicKey({ format: 'jwk', key: { kty: 'RSA', n: unsigned(n), e: unsigned(e) } })
      }
    }
  }
  return createPublicKey({ key: spki, format: 'der', type: 'spki' })
}

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
      yield * commonNames(der, subject)
      for (const attribute of attributes?.tag === 0xa0 ? children(der, attributes) : []) {
        const [type, values] = children(der, attribute)
        if (!type || !values || oidText(der, type) !== '1.2.840.113549.1.9.14') continue
        for (const extensions of children(der, values)) {
          for (const ext of extensionsOf(der, extensions)) {
            if (ext.oid !== '2.5.29.17') continue
            for (const { kind, value } of generalNameEntries(der, ext.value.start)) {
              if (value === undefined) throw new Error(`a ${kind} name is not supported`)
              yield value
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
