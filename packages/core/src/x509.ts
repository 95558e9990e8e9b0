import { createPublicKey, webcrypto } from 'node:crypto'

type CryptoKey = webcrypto.CryptoKey
type Algorithm = webcrypto.Algorithm
type EcdsaParams = webcrypto.EcdsaParams
type EcKeyImportParams = webcrypto.EcKeyImportParams
type RsaHashedImportParams = webcrypto.RsaHashedImportParams
import { createRequire } from 'node:module'
import type * as X509 from '@peculiar/x509'

export type X509Module = typeof X509

/** Passed explicitly to every @peculiar/x509 call, so its global provider is never read or set. */
export const webCrypto = webcrypto

let x509Module: X509Module | undefined

/**
 * @peculiar/x509, loaded on first use (it takes 70-200 ms): the local CA and TLS-ALPN-01
 * challenge certificates need it; the ACME issuance path does not (der.ts). It is required, not
 * imported, so that it shares the CommonJS copy with acme-client's crypto module when an app
 * loads both, instead of loading the ESM build and its dependencies a second time.
 */
export function loadX509 (): X509Module {
  x509Module ??= createRequire(import.meta.url)('@peculiar/x509') as X509Module
  return x509Module
}

/** The WebCrypto key pair and signature algorithm for a PKCS#8 PEM private key (EC or RSA). */
export async function webCryptoKeys (privateKeyPem: string): Promise<{ keys: { privateKey: CryptoKey, publicKey: CryptoKey }, algorithm: EcdsaParams | Algorithm }> {
  const publicKey = createPublicKey(privateKeyPem)
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const pkcs8 = Buffer.from(privateKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  let params: EcKeyImportParams | RsaHashedImportParams
  let algorithm: EcdsaParams | Algorithm
  if (publicKey.asymmetricKeyType === 'ec') {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'
    params = { name: 'ECDSA', namedCurve: curve }
    algorithm = { name: 'ECDSA', hash: curve === 'P-384' ? 'SHA-384' : 'SHA-256' } as EcdsaParams
  } else {
    params = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
    algorithm = { name: 'RSASSA-PKCS1-v1_5' }
  }
  const subtle = webCrypto.subtle
  return {
    keys: {
      privateKey: await subtle.importKey('pkcs8', pkcs8, params, true, ['sign']),
      publicKey: await subtle.importKey('spki', spki, params, true, ['verify']),
    },
    algorithm,
  }
}
