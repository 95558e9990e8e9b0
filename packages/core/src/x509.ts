import { webcrypto } from 'node:crypto'
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
