import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { getText, postJson } from './http.js'
import { freePort, stablePort } from './ports.js'
import { startService, type Service } from './service.js'
import { requireCommands } from './system.js'
import { createTlsFixture, type TlsFixture } from './tls-fixture.js'

const requirements = [
  { command: 'pebble', debianPackage: 'pebble' },
  { command: 'pebble-challtestsrv', debianPackage: 'pebble' },
  { command: 'openssl', debianPackage: 'openssl' },
]

/** pebble-challtestsrv as Pebble's DNS server: tests point names at chosen addresses. */
export interface Challtestsrv {
  /** host:port of its DNS server, for Pebble's -dnsserver */
  dnsServer: string
  managementUrl: string
  /** answer A queries for `host` with exactly `addresses`, replacing earlier ones (unset names answer 127.0.0.1) */
  addA (host: string, addresses: string[]): Promise<void>
  clearA (host: string): Promise<void>
  setTxt (host: string, value: string): Promise<void>
  clearTxt (host: string): Promise<void>
  stop (): Promise<void>
}

export async function startChalltestsrv (): Promise<Challtestsrv> {
  requireCommands(requirements)
  const [dnsPort, mgmtPort] = [await freePort(), await freePort()]
  const managementUrl = `http://127.0.0.1:${mgmtPort}`
  const service = await startService('pebble-challtestsrv', [
    '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-dns01', `127.0.0.1:${dnsPort}`,
    '-management', `127.0.0.1:${mgmtPort}`,
    '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ], { ready: async () => { await postJson(`${managementUrl}/clear-a`, { host: 'ready.invalid' }); return true } })
  return { ...challtestsrvClient(managementUrl, `127.0.0.1:${dnsPort}`), stop: () => service.stop() }
}

/** Talks to a challtestsrv started elsewhere, e.g. by the global setup in another process. */
export function challtestsrvClient (managementUrl: string, dnsServer: string): Omit<Challtestsrv, 'stop'> {
  const call = async (endpoint: string, body: unknown) => { await postJson(`${managementUrl}/${endpoint}`, body) }
  const fqdn = (host: string) => host.endsWith('.') ? host : `${host}.`
  return {
    dnsServer,
    managementUrl,
    // challtestsrv's add-a appends to what is there; clear first so the answer is exactly `addresses`
    addA: async (host, addresses) => { await call('clear-a', { host }); await call('add-a', { host, addresses }) },
    clearA: (host) => call('clear-a', { host }),
    setTxt: (host, value) => call('set-txt', { host: fqdn(host), value }),
    clearTxt: (host) => call('clear-txt', { host: fqdn(host) }),
  }
}

export interface PebbleOptions {
  /** host:port of the DNS server Pebble resolves names with (challtestsrv, or knot for DNS-01) */
  dnsServer: string
  /** port Pebble's VA connects to for HTTP-01 (default: a free port) */
  httpPort?: number
  /** port Pebble's VA connects to for TLS-ALPN-01 (default: a free port) */
  tlsPort?: number
  /** lifetime of issued certificates in seconds (Pebble default: 5 years) */
  validitySeconds?: number
  /** EAB mode: kid -> base64url HMAC key; accounts then need a binding */
  eab?: Record<string, string>
  /** percentage of good nonces Pebble rejects as bad (default 0; Pebble's own default is 5) */
  nonceRejectPercent?: number
  /** percentage of orders that reuse a valid authorization (default 0, so every order is validated) */
  authzReusePercent?: number
  /** extra environment, e.g. PEBBLE_CHAIN_LENGTH */
  env?: Record<string, string>
  /** the HTTPS identity of Pebble's own listener (default: a new throwaway CA) */
  tls?: TlsFixture
}

/** A running Pebble (Debian's pebble 2.4, no-sleep). */
export interface Pebble {
  directoryUrl: string
  managementUrl: string
  /** trust for Pebble's HTTPS listener: pass as caBundle */
  caBundle: string
  tls: TlsFixture
  httpPort: number
  tlsPort: number
  service: Service
  /** PEM of the root that signs issued certificates (regenerated at every start) */
  rootCertificate (): Promise<string>
  stop (): Promise<void>
}

export async function startPebble (opts: PebbleOptions): Promise<Pebble> {
  requireCommands(requirements)
  const dir = mkdtempSync(path.join(tmpdir(), 'harness-pebble-'))
  const tls = opts.tls ?? createTlsFixture(dir)
  const [port, mgmtPort] = [await freePort(), await freePort()]
  const httpPort = opts.httpPort ?? await stablePort()
  const tlsPort = opts.tlsPort ?? await stablePort()
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: tls.certFile,
      privateKey: tls.keyFile,
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: opts.eab !== undefined,
      externalAccountMACKeys: opts.eab ?? {},
      ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
    },
  }
  const configFile = path.join(dir, 'pebble-config.json')
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  const directoryUrl = `https://127.0.0.1:${port}/dir`
  const managementUrl = `https://127.0.0.1:${mgmtPort}`
  const service = await startService('pebble', ['-config', configFile, '-dnsserver', opts.dnsServer], {
    cwd: dir,
    env: {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: String(opts.nonceRejectPercent ?? 0),
      PEBBLE_AUTHZREUSE: String(opts.authzReusePercent ?? 0),
      ...opts.env,
    },
    ready: async () => { await getText(directoryUrl, tls.caBundle); return true },
  })
  return {
    directoryUrl,
    managementUrl,
    caBundle: tls.caBundle,
    tls,
    httpPort,
    tlsPort,
    service,
    rootCertificate: () => getText(`${managementUrl}/roots/0`, tls.caBundle),
    stop: () => service.stop(),
  }
}
