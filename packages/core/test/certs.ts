import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** A leaf certificate issued by the test CA, shaped like what a CA returns. */
export interface TestLeaf {
  names: string[]
  /** PEM chain: leaf, then the intermediate */
  certificate: string
  /** PEM of the leaf alone */
  leaf: string
  /** PEM PKCS#8 ECDSA P-256 key */
  privateKey: string
  /** lower-case hex, as `X509Certificate.serialNumber` and `getPeerCertificate().serialNumber` give it */
  serial: string
  notAfter: Date
}

/** A throwaway root -> intermediate -> leaf hierarchy made with openssl, one per test process. */
export interface TestCa {
  /** PEM of the root: what a client must trust */
  root: string
  /** PEM of the intermediate that signs the leaves */
  intermediate: string
  /** Issues an ECDSA P-256 leaf for DNS names and IP addresses (one openssl run, a few ms). */
  issue (names: string[], options?: { days?: number }): TestLeaf
  /** Removes the temporary directory. */
  cleanup (): void
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
let shared: TestCa | undefined

/** The process-wide test CA, created on first use. */
export function testCa (): TestCa {
  shared ??= createTestCa()
  return shared
}

export function createTestCa (): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'core-test-ca-'))
  const file = (name: string) => path.join(dir, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
  const ca = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']
  openssl('req', '-x509', ...EC, '-keyout', file('root.key'), '-out', file('root.pem'), '-days', '30',
    '-subj', '/CN=fastify-acme core test root', ...ca)
  openssl('req', '-x509', ...EC, '-keyout', file('int.key'), '-out', file('int.pem'), '-days', '30',
    '-subj', '/CN=fastify-acme core test intermediate', '-CA', file('root.pem'), '-CAkey', file('root.key'), ...ca)
  const intermediate = readFileSync(file('int.pem'), 'utf8')
  let count = 0

  return {
    root: readFileSync(file('root.pem'), 'utf8'),
    intermediate,
    issue (names, options = {}) {
      const n = ++count
      const san = names.map((name) => `${net.isIP(name) ? 'IP' : 'DNS'}:${name}`).join(',')
      openssl('req', '-x509', ...EC, '-keyout', file(`${n}.key`), '-out', file(`${n}.pem`),
        '-days', String(options.days ?? 7), '-subj', `/CN=${names[0]}`,
        '-CA', file('int.pem'), '-CAkey', file('int.key'),
        '-addext', `subjectAltName=${san}`, '-addext', 'basicConstraints=critical,CA:FALSE',
        '-addext', 'extendedKeyUsage=serverAuth')
      const leaf = readFileSync(file(`${n}.pem`), 'utf8')
      const x509 = new X509Certificate(leaf)
      return {
        names: [...names],
        certificate: leaf + intermediate,
        leaf,
        privateKey: readFileSync(file(`${n}.key`), 'utf8'),
        serial: x509.serialNumber.toLowerCase(),
        notAfter: new Date(x509.validTo),
      }
    },
    cleanup () {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
