import { generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'
import type { KeyType } from './certificate.js'
import { isIpAddress } from './names.js'
import { loadX509, webCrypto, webCryptoKeys } from './x509.js'

const generate = promisify(generateKeyPair)

export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096']

/** A new private key as PKCS#8 PEM. */
export async function generatePrivateKey (type: KeyType): Promise<string> {
  const pem = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as const
  const { privateKey } = type.startsWith('ec-')
    ? await generate('ec', { namedCurve: type === 'ec-p384' ? 'P-384' : 'P-256', ...pem })
    : await generate('rsa', { modulusLength: type === 'rsa-4096' ? 4096 : 2048, ...pem })
  return privateKey as unknown as string
}

/**
 * A PKCS#10 CSR (PEM) for `names` signed with `keyPem`. The first DNS name of at most 64
 * characters is the common name; every name, IP addresses included, goes in subjectAltName.
 */
export async function createCsr (names: string[], keyPem: string): Promise<string> {
  const x509 = loadX509()
  const commonName = names.find((n) => !isIpAddress(n) && n.length <= 64)
  const { keys, algorithm } = await webCryptoKeys(keyPem)
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(commonName ? { name: [{ CN: [commonName] }] } : {}),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIpAddress(n) ? 'ip' : 'dns', value: n }))),
    ],
  }, webCrypto)
  return csr.toString('pem')
}
