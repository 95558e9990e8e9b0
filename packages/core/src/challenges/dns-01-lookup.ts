import { Resolver } from 'node:dns/promises'
import { sleep } from '../acme/transport.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import type { Logger } from '../logger.js'

/** How DNS-01 looks names up: through `servers` (IP[:port]), or the system resolvers when none. */
export interface LookupOptions {
  servers?: string[]
  signal?: AbortSignal
  /** per-query timeout, ms (default 2000) */
  queryTimeoutMs?: number
}

const MAX_CNAME_HOPS = 8
const NO_ANSWER = new Set(['ENODATA', 'ENOTFOUND'])

/*
 * A fresh Resolver per lookup: c-ares may keep a query cache per channel, and a cached
 * answer from before present() would hide the new value until its TTL ran out.
 */
async function query<T> (opts: LookupOptions, servers: string[] | undefined, run: (r: Resolver) => Promise<T>): Promise<T> {
  const resolver = new Resolver({ timeout: opts.queryTimeoutMs ?? 2000, tries: 1 })
  if (servers) resolver.setServers(servers)
  const onAbort = () => resolver.cancel()
  opts.signal?.throwIfAborted()
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    return await run(resolver)
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason
    throw err
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
  }
}

function errorCode (err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'ERROR'
}

/**
 * Where a TXT record for `name` must go: `name` itself, or the end of the CNAME chain that
 * starts there (CNAME delegation). A name without a CNAME (no data, no such name) is itself.
 * Loops and chains longer than 8 fail.
 */
export async function followCname (name: string, opts: LookupOptions = {}): Promise<string> {
  const seen = [name]
  let current = name
  for (;;) {
    let targets: string[]
    try {
      targets = await query(opts, opts.servers, (r) => r.resolveCname(current))
    } catch (err) {
      if (NO_ANSWER.has(errorCode(err))) return current
      throw new AcmeError(ErrorCodes.DNS_PROVIDER, `cannot look up a CNAME at ${current}: ${errorCode(err)}`, { cause: err, retryable: true })
    }
    const target = targets[0]?.replace(/\.$/, '').toLowerCase()
    if (!target) return current
    if (seen.includes(target) || seen.length > MAX_CNAME_HOPS) {
      throw new AcmeError(ErrorCodes.DNS_PROVIDER, `CNAME chain from ${name} loops or is too long: ${[...seen, target].join(' -> ')}`)
    }
    seen.push(target)
    current = target
  }
}

/**
 * The zone `fqdn` belongs to: the closest enclosing name with an SOA record of its own. A name
 * with a CNAME is never a zone's apex, though its SOA query answers for the CNAME's target: the
 * target's SOA when that is an apex (through a recursive resolver), else the CNAME alone
 * (EBADRESP). So such a name is skipped, as lego does.
 */
export async function findZone (fqdn: string, opts: LookupOptions = {}): Promise<string> {
  const labels = fqdn.split('.')
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.')
    let answer: unknown
    try {
      await query(opts, opts.servers, (r) => r.resolveSoa(candidate))
    } catch (err) {
      if (NO_ANSWER.has(errorCode(err))) continue
      if (errorCode(err) !== 'EBADRESP') throw err
      answer = err
    }
    if (await hasCname(candidate, opts)) continue
    if (answer) throw answer
    return candidate
  }
  throw new AcmeError(ErrorCodes.DNS_PROVIDER, `no DNS zone found for ${fqdn}`)
}

async function hasCname (name: string, opts: LookupOptions): Promise<boolean> {
  try {
    return (await query(opts, opts.servers, (r) => r.resolveCname(name))).length > 0
  } catch (err) {
    if (NO_ANSWER.has(errorCode(err))) return false
    throw err
  }
}

/**
 * `zone`'s authoritative nameservers (its NS records), each as the list of its IP addresses.
 * A nameserver counts as one: on a host without an IPv6 route its IPv6 address never answers,
 * and any of its addresses answering with the value is enough.
 */
export async function authoritativeServers (zone: string, opts: LookupOptions = {}): Promise<string[][]> {
  const names = await query(opts, opts.servers, (r) => r.resolveNs(zone))
  const servers = await Promise.all(names.map(async (ns) => {
    const [v4, v6] = await Promise.all([
      query(opts, opts.servers, (r) => r.resolve4(ns)).catch(() => [] as string[]),
      query(opts, opts.servers, (r) => r.resolve6(ns)).catch(() => [] as string[]),
    ])
    return [...v4, ...v6]
  }))
  const seen = new Set<string>()
  return servers.map((addresses) => addresses.filter((a) => !seen.has(a) && seen.add(a))).filter((addresses) => addresses.length > 0)
}

/** Whether `server` answers a TXT query for `fqdn` with `value` among its strings; else why not. */
export async function txtVisible (fqdn: string, value: string, server: string | undefined, opts: LookupOptions = {}): Promise<true | string> {
  try {
    const records = await query(opts, server === undefined ? undefined : [server], (r) => r.resolveTxt(fqdn))
    return records.some((chunks) => chunks.join('') === value) || `${records.length} other value(s)`
  } catch (err) {
    if (opts.signal?.aborted) throw err
    return errorCode(err)
  }
}

/** No answer at all: nothing listens there, or it cannot be reached from here. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ETIMEOUT'])

/**
 * True as soon as one of `addresses` (one server's) answers with the value; else why each did
 * not, and whether none of them answered at all.
 */
function visibleOnAny (fqdn: string, value: string, addresses: Array<string | undefined>, signal?: AbortSignal): Promise<true | { why: string, unreachable: boolean }> {
  return new Promise((resolve, reject) => {
    const why: string[] = []
    let unreachable = true
    let left = addresses.length
    addresses.forEach((server, i) => {
      txtVisible(fqdn, value, server, { signal }).then((answer) => {
        if (answer === true) return resolve(true)
        why[i] = `${server ?? 'system resolver'} (${answer})`
        if (!UNREACHABLE.has(answer)) unreachable = false
        if (--left === 0) resolve({ why: why.join(' / '), unreachable })
      }, reject)
    })
  })
}

export interface PropagationOptions {
  fqdn: string
  value: string
  /**
   * The servers that must each answer with the value, each as IP[:port] addresses of which any
   * one answering is enough (a nameserver's IPv4 and IPv6); undefined: the system resolvers
   */
  servers?: string[][]
  /**
   * Where to check instead when, at the first check, none of `servers` answers at all (outbound
   * DNS blocked by a firewall): lists as in `servers`, where undefined is the system resolvers
   */
  fallback?: Array<Array<string | undefined>>
  timeoutMs: number
  logger: Logger
  signal?: AbortSignal
  /** first wait between checks, ms; grows 1.5x up to 2000 (default 250) */
  intervalMs?: number
  /** how often a progress line is logged at info while waiting, ms (default 5000) */
  progressEveryMs?: number
}

/**
 * Resolves once every server answers the TXT query for `fqdn` with `value`. Logs a progress
 * line at info when the first check misses and then every `progressEveryMs`; throws
 * ERR_ACME_DNS_PROVIDER naming the servers that still miss it after `timeoutMs`.
 */
export async function waitForPropagation (opts: PropagationOptions): Promise<void> {
  const { fqdn, value, logger, signal } = opts
  let servers: Array<Array<string | undefined>> = opts.servers ?? [[undefined]]
  let fallback = opts.fallback
  const progressEveryMs = opts.progressEveryMs ?? 5000
  const started = Date.now()
  let delay = opts.intervalMs ?? 250
  let nextProgressAt = started
  for (;;) {
    const answers = await Promise.all(servers.map((addresses) => visibleOnAny(fqdn, value, addresses, signal)))
    const failed = answers.filter((answer) => answer !== true)
    const missing = failed.map((answer) => answer.why)
    if (fallback && failed.length === answers.length && failed.every((answer) => answer.unreachable)) {
      logger.warn({ fqdn, missing, fallback: fallback.map((s) => s.map((a) => a ?? 'system resolver').join(' / ')) },
        'DNS-01: none of the zone\'s nameservers answers from here (outbound DNS blocked?); checking with the resolvers instead')
      servers = fallback
      fallback = undefined
      continue
    }
    fallback = undefined
    const elapsedMs = Date.now() - started
    if (missing.length === 0) {
      logger.debug({ fqdn, elapsedMs }, 'DNS-01 TXT record visible on every resolver')
      return
    }
    if (elapsedMs >= opts.timeoutMs) {
      throw new AcmeError(ErrorCodes.DNS_PROVIDER,
        `the TXT record at ${fqdn} was not visible on ${missing.join(', ')} after ${elapsedMs} ms (challenges.dns01.propagationTimeoutMs is ${opts.timeoutMs})`,
        { retryable: true })
    }
    if (Date.now() >= nextProgressAt) {
      logger.info({ fqdn, missing, elapsedMs, timeoutMs: opts.timeoutMs }, 'waiting for the DNS-01 TXT record to propagate')
      nextProgressAt = Date.now() + progressEveryMs
    }
    await sleep(Math.min(delay, Math.max(opts.timeoutMs - elapsedMs, 1)), signal)
    delay = Math.min(delay * 1.5, 2000)
  }
}
