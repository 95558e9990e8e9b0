import net from 'node:net'
import { invalidOption } from '../errors.js'

/**
 * A DNS provider for DNS-01: publishes and removes TXT records. Providers for RFC 2136,
 * Cloudflare and Route 53 ship as subpath exports (`@fastify-acme/core/dns/rfc2136`, ...);
 * any object with these methods works.
 */
export interface Dns01Provider {
  /** short name for log lines and error messages, e.g. 'rfc2136' */
  readonly name?: string
  /**
   * Adds (does not replace) a TXT record `value` at `fqdn` (e.g. `_acme-challenge.example.com`,
   * no trailing dot). Several values may exist at one name at once (example.com and
   * *.example.com in one order), and present() may be called for both concurrently.
   * Presenting a value that is already there succeeds.
   */
  present (fqdn: string, value: string, signal?: AbortSignal): Promise<void>
  /** Removes exactly that TXT value, keeping any other value at the name; removing one that is gone succeeds. */
  cleanup (fqdn: string, value: string, signal?: AbortSignal): Promise<void>
  /**
   * Optional zone discovery: the zone (no trailing dot) this provider would write `fqdn` into,
   * e.g. `example.com` for `_acme-challenge.www.example.com`. Used to find the zone's
   * authoritative nameservers for the propagation check (an SOA lookup otherwise).
   */
  zoneFor? (fqdn: string, signal?: AbortSignal): Promise<string>
  /** Optional: the longest present() itself may wait, ms (Route 53 waits for its change to be INSYNC); the order's deadline grows by it. */
  readonly presentTimeoutMs?: number
}

/** DNS-01 settings: the provider plus how to find the record's name and when it is visible. */
export interface Dns01Options {
  /** publishes and removes the TXT records */
  provider: Dns01Provider
  /**
   * DNS servers every lookup goes through instead of the system resolvers (the CNAME at the
   * challenge name, the zone, its nameservers), as IP addresses with an optional port:
   * '192.0.2.53', '192.0.2.53:5353', '2001:db8::53', '[2001:db8::53]:5353'. Either way,
   * propagation is checked on the zone's authoritative nameservers found through them, asked
   * directly so that no resolver cache stands in the way; a nameserver at the address of one of
   * these is asked on its port. Only when the nameservers cannot be found is the value checked
   * on these (each must answer with it), or on the system resolvers.
   */
  resolvers?: string[]
  /**
   * Longest wait for the TXT value to be visible on every resolver, in ms (default 120 000).
   * 0 skips the check: the CA is told to validate as soon as the provider returns.
   */
  propagationTimeoutMs?: number
  /**
   * Fixed wait after the provider returns and before the first propagation check, in ms
   * (default 0), for providers known to publish with a lag.
   */
  propagationDelayMs?: number
  /**
   * Follow a CNAME at `_acme-challenge.<name>` (CNAME delegation: the challenge name points
   * into another zone, often one the provider's credentials may write) and present the
   * record at its target (default true).
   */
  followCnames?: boolean
}

/** What `challenges.dns01` accepts: a provider alone (every default), or provider and settings. */
export type Dns01Config = Dns01Provider | Dns01Options

/** Dns01Options with every default applied. */
export interface ResolvedDns01Options {
  provider: Dns01Provider
  resolvers?: string[]
  propagationTimeoutMs: number
  propagationDelayMs: number
  followCnames: boolean
}

/** Validates `challenges.dns01` and applies defaults; throws ERR_ACME_INVALID_OPTION naming the bad field. */
export function resolveDns01Options (config: Dns01Config, option = 'challenges.dns01'): ResolvedDns01Options {
  if (config === null || typeof config !== 'object') invalidOption(option, config, 'a DNS-01 provider or { provider, ... }')
  const opts: Dns01Options = isProvider(config) ? { provider: config } : config
  if (!isProvider(opts.provider)) {
    invalidOption(isProvider(config) ? option : `${option}.provider`, opts.provider, 'a DNS-01 provider with present() and cleanup()')
  }
  if (opts.resolvers !== undefined) {
    if (!Array.isArray(opts.resolvers) || opts.resolvers.length === 0) invalidOption(`${option}.resolvers`, opts.resolvers, 'a non-empty array of IP addresses')
    for (const server of opts.resolvers) {
      if (!isServerAddress(server)) invalidOption(`${option}.resolvers`, server, 'an IP address with an optional port ("192.0.2.53:5353", "[2001:db8::53]:5353")')
    }
  }
  const resolved: ResolvedDns01Options = {
    provider: opts.provider,
    ...(opts.resolvers ? { resolvers: [...opts.resolvers] } : {}),
    propagationTimeoutMs: opts.propagationTimeoutMs ?? 120_000,
    propagationDelayMs: opts.propagationDelayMs ?? 0,
    followCnames: opts.followCnames ?? true,
  }
  for (const field of ['propagationTimeoutMs', 'propagationDelayMs'] as const) {
    const value = resolved[field]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) invalidOption(`${option}.${field}`, value, 'a whole number of ms, 0 or more')
  }
  if (typeof resolved.followCnames !== 'boolean') invalidOption(`${option}.followCnames`, resolved.followCnames, 'a boolean')
  return resolved
}

function isProvider (value: unknown): value is Dns01Provider {
  const p = value as Dns01Provider | null
  return typeof p?.present === 'function' && typeof p.cleanup === 'function'
}

/** An IP address with an optional port, as node:dns setServers() takes it. */
function isServerAddress (value: unknown): boolean {
  if (typeof value !== 'string') return false
  if (net.isIP(value) !== 0) return true
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value)
  return m !== null && net.isIP(m[1] ?? m[2]!) !== 0 && Number(m[3]) > 0 && Number(m[3]) < 65536
}
