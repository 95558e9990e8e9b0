import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** A throwaway CA and a server certificate it signed, for the harness's own HTTPS listeners. */
export interface TlsFixture {
  /** PEM of the CA: what a client must trust to reach Pebble or the ACME proxy */
  caBundle: string
  certFile: string
  keyFile: string
  cert: string
  key: string
}

/**
 * Creates a CA and a server certificate for localhost, 127.0.0.1 and ::1 with openssl; with
 * `usage: 'client'`, a client certificate (clientAuth, no names) for mutual TLS instead.
 */
export function createTlsFixture (dir = mkdtempSync(path.join(tmpdir(), 'harness-tls-')), opts: { usage?: 'server' | 'client' } = {}): TlsFixture {
  const client = opts.usage === 'client'
  const file = (name: string) => path.join(dir, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '30', '-subj', '/CN=fastify-acme test harness CA')
  openssl('req', ...ec, '-keyout', file('key.pem'), '-out', file('server.csr'), '-subj', client ? '/CN=test client' : '/CN=localhost')
  writeFileSync(file('ext.cnf'), client
    ? 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n'
    : 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('cert.pem'), '-days', '30', '-extfile', file('ext.cnf'))
  return {
    caBundle: readFileSync(file('ca.pem'), 'utf8'),
    certFile: file('cert.pem'),
    keyFile: file('key.pem'),
    cert: readFileSync(file('cert.pem'), 'utf8'),
    key: readFileSync(file('key.pem'), 'utf8'),
  }
}
