import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Resolver } from 'node:dns/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.js'
import { startService, type Service } from './service.js'
import { requireCommands } from './system.js'

const run = promisify(execFile)

/** One zone Knot serves. */
export interface KnotZone {
  /** e.g. 'example.test' */
  name: string
  /** extra records in zone-file syntax, owners relative to the zone, e.g. 'www 60 A 127.0.0.1' */
  records?: string[]
  /** whether the TSIG key may update the zone (default true) */
  update?: boolean
  /** the SOA minimum: how long resolvers cache "no such name" (default 1 s) */
  negativeTtl?: number
}

export interface KnotOptions {
  /** default: example.test and delegated.test, both updatable */
  zones?: KnotZone[]
  /** address to listen on (default 127.0.0.1) */
  host?: string
}

/** A running Knot DNS (Debian's knotd): authoritative for test zones, DNS UPDATE with a TSIG key. */
export interface Knot {
  /** host:port for queries and updates; give it to Pebble as -dnsserver */
  address: string
  host: string
  port: number
  /** the key updates must be signed with */
  tsig: { name: string, algorithm: 'hmac-sha256', secret: string }
  zones: string[]
  /** the zone's records as knotc prints them, `owner. TTL TYPE data`, optionally of one owner and type */
  records (zone: string, owner?: string, type?: string): Promise<string[]>
  /** the TXT strings at `owner` (read from the zone Knot serves, not through a resolver) */
  txt (owner: string): Promise<string[]>
  /** adds one record in a knotc zone transaction, e.g. ('example.test', '_acme-challenge', 'CNAME', 'x.delegated.test.') */
  addRecord (zone: string, owner: string, type: string, data: string, ttl?: number): Promise<void>
  /** removes the records of `owner` (of `type` when given) in a knotc zone transaction */
  removeRecords (zone: string, owner: string, type?: string): Promise<void>
  service: Service
  stop (): Promise<void>
}

export const DEFAULT_ZONES: KnotZone[] = [{ name: 'example.test' }, { name: 'delegated.test' }]

export async function startKnot (opts: KnotOptions = {}): Promise<Knot> {
  requireCommands([{ command: 'knotd', debianPackage: 'knot' }, { command: 'knotc', debianPackage: 'knot' }])
  const dir = mkdtempSync(path.join(tmpdir(), 'harness-knot-'))
  const host = opts.host ?? '127.0.0.1'
  const port = await freePort(host)
  const zones = opts.zones ?? DEFAULT_ZONES
  const tsig = { name: 'acme-test-key', algorithm: 'hmac-sha256' as const, secret: randomBytes(32).toString('base64') }
  const socket = path.join(dir, 'knot.sock')
  for (const zone of zones) writeFileSync(path.join(dir, `${zone.name}.zone`), zoneFile(zone, host))
  writeFileSync(path.join(dir, 'knot.conf'), [
    'server:',
    `  rundir: "${dir}"`,
    `  listen: ${host}@${port}`,
    'log:',
    '  - target: stderr',
    '    any: info',
    'database:',
    `  storage: "${dir}"`,
    'key:',
    `  - id: ${tsig.name}`,
    `    algorithm: ${tsig.algorithm}`,
    `    secret: ${tsig.secret}`,
    'acl:',
    '  - id: update',
    `    key: ${tsig.name}`,
    '    action: update',
    'control:',
    `  listen: "${socket}"`,
    'template:',
    '  - id: default',
    `    storage: "${dir}"`,
    '    file: "%s.zone"',
    // updates live in memory only: nothing is written back to the zone files
    '    zonefile-sync: -1',
    '    journal-content: none',
    'zone:',
    ...zones.flatMap((z) => [`  - domain: ${z.name}`, ...(z.update === false ? [] : ['    acl: update'])]),
    '',
  ].join('\n'))

  const service = await startService('knotd', ['-c', path.join(dir, 'knot.conf')], {
    cwd: dir,
    ready: async () => {
      const resolver = new Resolver({ timeout: 500, tries: 1 })
      resolver.setServers([`${host}:${port}`])
      await Promise.all(zones.map((z) => resolver.resolveSoa(z.name)))
      return true
    },
  })
  const knotc = async (...args: string[]) => (await run('knotc', ['-s', socket, ...args])).stdout
  const fqdn = (name: string, zone: string) => name.endsWith('.') ? name : name === '@' ? `${zone}.` : name.endsWith(zone) ? `${name}.` : `${name}.${zone}.`
  const transaction = async (zone: string, change: () => Promise<unknown>) => {
    await knotc('zone-begin', zone)
    try {
      await change()
      await knotc('zone-commit', zone)
    } catch (err) {
      await knotc('zone-abort', zone).catch(() => {})
      throw err
    }
  }
  const records = async (zone: string, owner?: string, type?: string): Promise<string[]> => {
    const args = ['zone-read', zone, ...(owner ? [fqdn(owner, zone)] : []), ...(type ? [type] : [])]
    const out = await knotc(...args).catch((err: { stdout?: string, stderr?: string }) => {
      // knotc reports a name or type with no records as an error
      if (/no such|not exist/i.test(`${err.stdout}${err.stderr}`)) return ''
      throw err
    })
    return out.split('\n').filter(Boolean).map((line) => line.replace(/^\[[^\]]+\]\s+/, ''))
  }

  return {
    address: `${host}:${port}`,
    host,
    port,
    tsig,
    zones: zones.map((z) => z.name),
    records,
    async txt (owner) {
      const name = owner.replace(/\.$/, '')
      const zone = zones.map((z) => z.name).filter((z) => name === z || name.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0]
      if (!zone) throw new Error(`knot serves no zone for ${owner}`)
      return (await records(zone, name, 'TXT')).map((line) => line.split(/\s+TXT\s+/)[1]!.replace(/^"|"$/g, ''))
    },
    addRecord: (zone, owner, type, data, ttl = 60) => transaction(zone, () => knotc('zone-set', zone, fqdn(owner, zone), String(ttl), type, data)),
    removeRecords: (zone, owner, type) => transaction(zone, () => knotc('zone-unset', zone, fqdn(owner, zone), ...(type ? [type] : []))),
    service,
    async stop () {
      await service.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function zoneFile (zone: KnotZone, host: string): string {
  return [
    `$ORIGIN ${zone.name}.`,
    '$TTL 60',
    // SOA minimum 1 s unless asked: negative answers are not cached for long anywhere
    `@ SOA ns1.${zone.name}. hostmaster.${zone.name}. 1 3600 600 86400 ${zone.negativeTtl ?? 1}`,
    `@ NS ns1.${zone.name}.`,
    `ns1 A ${host}`,
    ...(zone.records ?? []),
    '',
  ].join('\n')
}
