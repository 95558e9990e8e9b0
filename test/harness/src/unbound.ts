import { Resolver } from 'node:dns/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'
import { startService, type Service } from './service.js'
import { requireCommands } from './system.js'

export interface UnboundOptions {
  /** zones to resolve, each through the authoritative server at `server` (host:port, IPv4) */
  stubs: Array<{ zone: string, server: string }>
  /** address to listen on (default 127.0.0.1) */
  host?: string
  /** cache answers, negative ones included, as a real resolver does (default false: every query reaches the authoritative server) */
  cache?: boolean
}

/**
 * A running Unbound (Debian's unbound): a recursive resolver in front of test authoritative
 * servers, with caching off. Pebble needs one to follow a CNAME from one zone into another:
 * an authoritative server answers the CNAME only, and Pebble's stub resolver does not chase
 * it (a real CA's resolver does; Let's Encrypt runs Unbound).
 */
export interface Unbound {
  /** host:port; give it to Pebble as -dnsserver */
  address: string
  service: Service
  stop (): Promise<void>
}

export async function startUnbound (opts: UnboundOptions): Promise<Unbound> {
  requireCommands([{ command: 'unbound', debianPackage: 'unbound' }])
  const dir = mkdtempSync(path.join(tmpdir(), 'harness-unbound-'))
  const host = opts.host ?? '127.0.0.1'
  const port = await freePort(host)
  const conf = path.join(dir, 'unbound.conf')
  writeFileSync(conf, [
    'server:',
    `  interface: ${host}@${port}`,
    `  port: ${port}`,
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  do-ip6: no',
    '  do-not-query-localhost: no',
    '  module-config: "iterator"',
    // no cache unless asked: every query reaches the authoritative server, as a propagation-sensitive test needs
    ...(opts.cache ? [] : ['  cache-max-ttl: 0', '  cache-max-negative-ttl: 0']),
    '  local-zone: "test." nodefault',
    '  domain-insecure: "test."',
    'remote-control:',
    '  control-enable: no',
    ...opts.stubs.flatMap((s) => ['stub-zone:', `  name: "${s.zone}"`, `  stub-addr: ${s.server.replace(/:(\d+)$/, '@$1')}`]),
    '',
  ].join('\n'))
  const service = await startService('unbound', ['-d', '-c', conf], {
    cwd: dir,
    ready: async () => {
      const resolver = new Resolver({ timeout: 500, tries: 1 })
      resolver.setServers([`${host}:${port}`])
      await Promise.all(opts.stubs.map((s) => resolver.resolveSoa(s.zone)))
      return true
    },
  })
  return {
    address: `${host}:${port}`,
    service,
    async stop () {
      await service.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
