import { randomInt } from 'node:crypto'
import type { Dns01Provider } from '../challenges/dns-01.js'
import { AcmeError, ErrorCodes, invalidOption } from '../errors.js'
import { exchangeTcp, parseServer, type ServerAddress } from './tcp.js'
import { signRequest, TSIG_ALGORITHMS, tsigErrorOf, verifyResponse, type TsigAlgorithm, type TsigKey } from './tsig.js'
import { decodeMessage, encodeMessage, Opcode, rcodeName, RecordClass, RecordType, txtData, type DecodedMessage, type ResourceRecord } from './wire.js'

/** Options of rfc2136Provider(): DNS UPDATE to a primary server (BIND, Knot, PowerDNS, ...). */
export interface Rfc2136Options {
  /** the primary server that accepts updates: 'host', 'host:port', '[v6]:port' (port default 53) */
  server: string
  /**
   * TSIG key the server allows updates with (RFC 8945). Omit only for a server that accepts
   * unsigned updates from this address. The secret is never logged nor put in an error.
   */
  tsig?: {
    /** key name as configured on the server, e.g. 'acme-update' */
    name: string
    /** the base64 secret, as `tsig-keygen` / `keymgr -t` print it */
    secret: string
    /** default 'hmac-sha256' */
    algorithm?: TsigAlgorithm
  }
  /** zone to update (no trailing dot); default: found with an SOA query to `server` */
  zone?: string
  /** TTL of the TXT records, in seconds (default 60) */
  ttl?: number
  /** longest wait for one answer from the server, in ms (default 10 000) */
  timeoutMs?: number
}

/** A Dns01Provider that sends DNS UPDATE messages (RFC 2136) over TCP, signed with TSIG. */
export function rfc2136Provider (options: Rfc2136Options): Dns01Provider {
  const opts = validate(options)
  const zones = new Map<string, Promise<string>>()

  async function exchange (message: Buffer, what: string, signal?: AbortSignal, sign = true): Promise<DecodedMessage> {
    const signed = opts.key && sign ? signRequest(message, opts.key) : undefined
    let raw: Buffer
    try {
      raw = await exchangeTcp(opts.server, signed?.signed ?? message, opts.timeoutMs, signal)
    } catch (err) {
      if (signal?.aborted) throw err
      throw failure(`${what}: ${(err as Error).message}`, err, true)
    }
    let response: DecodedMessage
    try {
      response = decodeMessage(raw)
    } catch (err) {
      throw failure(`${what}: malformed answer (${(err as Error).message})`, err, true)
    }
    if (response.id !== message.readUInt16BE(0)) throw failure(`${what}: the answer is for another message`, undefined, true)
    const tsigError = tsigErrorOf(response)
    const nxdomainIsAnswer = !sign && response.rcode === 3
    if ((response.rcode !== 0 && !nxdomainIsAnswer) || tsigError) {
      const key = opts.key ? ` (TSIG key "${opts.key.name}")` : ''
      const reason = tsigError ? `${rcodeName(response.rcode)}/${rcodeName(tsigError)}: the server rejected the TSIG key or signature${key}` : rcodeName(response.rcode)
      throw failure(`${what}: ${opts.label} answered ${reason}`, undefined, response.rcode === 2)
    }
    if (opts.key && signed) {
      const problem = verifyResponse(raw, response, signed.mac, opts.key)
      if (problem) throw failure(`${what}: ${problem}`)
    }
    return response
  }

  async function discoverZone (fqdn: string, signal?: AbortSignal): Promise<string> {
    // the SOA is in the answer at a zone apex and in the authority section below it; a name
    // that is a CNAME gets neither, so its parent is asked next
    const labels = fqdn.split('.')
    for (let i = 0; i < labels.length; i++) {
      const name = labels.slice(i).join('.')
      const query = encodeMessage({ id: randomInt(65536), opcode: Opcode.QUERY, questions: [{ name, type: RecordType.SOA, class: RecordClass.IN }] })
      // unsigned: a query needs no key, and a server may refuse a key its zone's ACL does not name
      const response = await exchange(query, `finding the zone of ${fqdn}`, signal, false)
      const soa = [...response.answers, ...response.authority].find((rr: ResourceRecord) => rr.type === RecordType.SOA)
      if (soa) return soa.name.toLowerCase()
    }
    throw failure(`finding the zone of ${fqdn}: ${opts.label} is not authoritative for it (no SOA in its answers); set the "zone" option`)
  }

  function zoneFor (fqdn: string, signal?: AbortSignal): Promise<string> {
    if (opts.zone) return Promise.resolve(opts.zone)
    const name = fqdn.toLowerCase().replace(/\.$/, '')
    let zone = zones.get(name)
    if (!zone) {
      zone = discoverZone(name, signal)
      zones.set(name, zone)
      zone.catch(() => zones.delete(name))
    }
    return zone
  }

  async function update (fqdn: string, value: string, add: boolean, signal?: AbortSignal): Promise<void> {
    const zone = await zoneFor(fqdn, signal)
    const record: ResourceRecord = add
      ? { name: fqdn, type: RecordType.TXT, class: RecordClass.IN, ttl: opts.ttl, data: txtData(value) }
      // RFC 2136 §2.5.4: class NONE deletes this one RR from the RRset
      : { name: fqdn, type: RecordType.TXT, class: RecordClass.NONE, ttl: 0, data: txtData(value) }
    const message = encodeMessage({
      id: randomInt(65536), opcode: Opcode.UPDATE, questions: [{ name: zone, type: RecordType.SOA, class: RecordClass.IN }], authority: [record],
    })
    await exchange(message, `${add ? 'adding' : 'deleting'} TXT ${fqdn} in zone ${zone}`, signal)
  }

  return {
    name: 'rfc2136',
    zoneFor,
    present: (fqdn, value, signal) => update(fqdn, value, true, signal),
    cleanup: (fqdn, value, signal) => update(fqdn, value, false, signal),
  }
}

interface Validated {
  server: ServerAddress
  label: string
  key?: TsigKey
  zone?: string
  ttl: number
  timeoutMs: number
}

function validate (options: Rfc2136Options): Validated {
  if (options === null || typeof options !== 'object') invalidOption('rfc2136', options, 'an object { server, tsig, ... }')
  const server = parseServer(options.server)
  if (!server) invalidOption('rfc2136.server', options.server, '"host", "host:port" or "[v6]:port"')
  let key: TsigKey | undefined
  if (options.tsig !== undefined) {
    const { name, secret, algorithm = 'hmac-sha256' } = options.tsig ?? {}
    if (typeof name !== 'string' || name === '') invalidOption('rfc2136.tsig.name', name, 'a key name')
    if (!TSIG_ALGORITHMS.includes(algorithm)) invalidOption('rfc2136.tsig.algorithm', algorithm, `one of ${TSIG_ALGORITHMS.join(', ')}`)
    const bytes = typeof secret === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(secret) ? Buffer.from(secret, 'base64') : Buffer.alloc(0)
    if (bytes.length === 0) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, 'option "rfc2136.tsig.secret" must be a base64 string (value not shown: it is a secret)')
    }
    key = { name: name.toLowerCase().replace(/\.$/, ''), algorithm, secret: bytes }
  }
  const ttl = options.ttl ?? 60
  if (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > 2 ** 31 - 1) invalidOption('rfc2136.ttl', ttl, 'a whole number of seconds')
  const timeoutMs = options.timeoutMs ?? 10_000
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) invalidOption('rfc2136.timeoutMs', timeoutMs, 'a positive whole number of ms')
  if (options.zone !== undefined && (typeof options.zone !== 'string' || options.zone === '')) invalidOption('rfc2136.zone', options.zone, 'a zone name')
  return {
    server,
    label: `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`,
    ...(key ? { key } : {}),
    ...(options.zone ? { zone: options.zone.toLowerCase().replace(/\.$/, '') } : {}),
    ttl,
    timeoutMs,
  }
}

function failure (message: string, cause?: unknown, retryable = false): AcmeError {
  return new AcmeError(ErrorCodes.DNS_PROVIDER, `rfc2136: ${message}`, { ...(cause ? { cause } : {}), retryable })
}

export type { TsigAlgorithm } from './tsig.js'
