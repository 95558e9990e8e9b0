import { type JsonWebKey, type KeyObject, createPrivateKey, generateKeyPair, sign } from 'node:crypto'
import { promisify } from 'node:util'
import type { KeyType } from './certificate.js'
import { isIpAddress } from './names.js'
import { EC_CURVES, KEY_OIDS, der, generalNames, subjectName, toPem, unsignedBytes } from './der.js'

const generate = promisify(generateKeyPair)
const signAsync = promisify(sign)

export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096']

/** A new private key as PKCS#8 PEM. */
export async function generatePrivateKey (type: KeyType): Promise<string> {
  return pkcs8Pem(await generateKey(type))
}

/** A new private key (generated off the event loop). */
export async function generateKey (type: KeyType): Promise<KeyObject> {
  const { privateKey } = type.startsWith('ec-')
    ? await generate('ec', { namedCurve: type === 'ec-p384' ? 'P-384' : 'P-256' })
    : await generate('rsa', { modulusLength: type === 'rsa-4096' ? 4096 : 2048 })
  return privateKey
}

/**
 * A private key as PKCS#8 PEM, byte for byte what OpenSSL exports. Built from the key's JWK
 * (~5 µs) in DER: OpenSSL 3's encoders take ~80 µs, on the event loop of every order.
 */
export function pkcs8Pem (key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  if (jwk.kty === 'EC') {
    // ECPrivateKey without [0] parameters (they are in the algorithm), with [1] publicKey
    const ecPrivateKey = der.sequence(der.integer(1), der.octets(b64u(jwk.d)), der.context(1, der.bits(ecPoint(jwk))))
    return toPem(der.sequence(der.integer(0), ecAlgorithm(jwk), der.octets(ecPrivateKey)), 'PRIVATE KEY')
  }
  const rsaPrivateKey = der.sequence(der.integer(0), ...[jwk.n, jwk.e, jwk.d, jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi].map(uint))
  return toPem(der.sequence(der.integer(0), RSA_ALGORITHM, der.octets(rsaPrivateKey)), 'PRIVATE KEY')
}

/** The DER SubjectPublicKeyInfo of a private key, built from its JWK (OpenSSL 3's encoder takes ~160 µs). */
export function spkiOf (key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' })
  if (jwk.kty === 'EC') return der.sequence(ecAlgorithm(jwk), der.bits(ecPoint(jwk)))
  return der.sequence(RSA_ALGORITHM, der.bits(der.sequence(uint(jwk.n), uint(jwk.e))))
}

const RSA_ALGORITHM = der.sequence(der.oid(KEY_OIDS.rsaEncryption), der.null())
const b64u = (field: string | undefined) => Buffer.from(field ?? '', 'base64url')
const ecPoint = (jwk: JsonWebKey) => Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)])

function ecAlgorithm (jwk: JsonWebKey): Buffer {
  const curve = EC_CURVES[jwk.crv ?? '']
  if (!curve) throw new RangeError(`unsupported curve ${jwk.crv}`)
  return der.sequence(der.oid(KEY_OIDS.ecPublicKey), der.oid(curve.oid))
}

/** A JWK number (unsigned, big-endian, base64url) as a DER INTEGER: no leading zeros, a 0x00 before a high bit. */
function uint (field: string | undefined): Buffer {
  const bytes = unsignedBytes(b64u(field))
  return der.integerBytes(bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes)
}

/**
 * A PKCS#10 CSR (PEM) for `names` signed with `privateKey` (PEM or KeyObject). The first DNS name of at most 64
 * characters is the common name; every name, IP addresses included, goes in subjectAltName.
 * Built with node:crypto and a few lines of DER, so the issuance path never loads an X.509 library.
 */
export async function createCsr (names: string[], privateKey: string | KeyObject): Promise<string> {
  // decoding a PEM key costs OpenSSL 3 ~0.35 ms: pass the KeyObject when there is one
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey
  const spki = spkiOf(key)
  const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1'
  const hash = p384 ? 'sha384' : 'sha256'
  const algorithm = key.asymmetricKeyType === 'ec'
    ? der.sequence(der.oid(p384 ? OID.ecdsaWithSha384 : OID.ecdsaWithSha256))
    : der.sequence(der.oid(OID.sha256WithRsa), der.null())
  const commonName = names.find((n) => !isIpAddress(n) && n.length <= 64)
  const subject = subjectName(commonName)
  const extensionRequest = der.sequence(der.oid(OID.extensionRequest),
    der.set(der.sequence(der.sequence(der.oid(OID.subjectAltName), der.octets(generalNames(names))))))
  const info = der.sequence(der.integer(0), subject, spki, der.context(0, extensionRequest))
  const request = der.sequence(info, algorithm, der.bits(await signAsync(hash, info, key)))
  return toPem(request, 'CERTIFICATE REQUEST')
}

const OID = {
  subjectAltName: '2.5.29.17',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
}
