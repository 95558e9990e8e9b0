import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPair, sign } from 'node:crypto'
import { promisify } from 'node:util'
import type { KeyType } from './certificate.js'
import { isIpAddress } from './names.js'
import { der, generalNames, subjectName, toPem } from './der.js'

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

export function pkcs8Pem (key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string
}

/**
 * A PKCS#10 CSR (PEM) for `names` signed with `privateKey` (PEM or KeyObject). The first DNS name of at most 64
 * characters is the common name; every name, IP addresses included, goes in subjectAltName.
 * Built with node:crypto and a few lines of DER, so the issuance path never loads an X.509 library.
 */
export async function createCsr (names: string[], privateKey: string | KeyObject): Promise<string> {
  // decoding a PEM key costs OpenSSL 3 ~0.35 ms: pass the KeyObject when there is one
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
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
