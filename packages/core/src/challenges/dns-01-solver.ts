import { sleep } from '../acme/transport.js'
import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import { type Logger, silentLogger } from '../logger.js'
import type { ResolvedDns01Options } from './dns-01.js'
import { authoritativeServers, findZone, followCname, waitForPropagation } from './dns-01-lookup.js'
import type { ChallengeSolver, ChallengeTask } from './solver.js'

/** longest a provider's cleanup may take, ms: cleanup runs after the order's own signal may have fired */
const CLEANUP_TIMEOUT_MS = 30_000

/**
 * DNS-01 through a provider: the TXT record goes at `_acme-challenge.<name>` (the apex and
 * the wildcard of one name share it), or at the end of the CNAME chain that starts there.
 * present() resolves once the value is visible on the resolvers; cleanup() removes it from
 * wherever present() wrote it.
 */
export class Dns01Solver implements ChallengeSolver {
  readonly type = 'dns-01'
  readonly #opts: ResolvedDns01Options
  readonly #log: Logger
  // task -> the name present() wrote at; kept in-process like CertMagic, so the instance that presents cleans up
  readonly #written = new Map<string, string>()

  constructor (opts: ResolvedDns01Options, logger: Logger = silentLogger) {
    this.#opts = opts
    this.#log = logger
  }

  /** the provider's own wait, then the propagation delay and check, plus a minute for the lookups around them */
  get presentTimeoutMs (): number {
    const { provider, propagationDelayMs, propagationTimeoutMs } = this.#opts
    return (provider.presentTimeoutMs ?? 0) + propagationDelayMs + propagationTimeoutMs + 60_000
  }

  canSolve (identifier: { type: 'dns' | 'ip' }): boolean {
    return identifier.type === 'dns'
  }

  async present (task: ChallengeTask): Promise<void> {
    const { provider } = this.#opts
    const fqdn = await this.#recordName(task)
    this.#written.set(taskKey(task), fqdn)
    this.#log.debug({ fqdn, provider: provider.name, wildcard: task.wildcard }, 'presenting the DNS-01 TXT record')
    await this.#call('present', fqdn, () => provider.present(fqdn, task.keyAuthorization, task.signal))
    const { propagationDelayMs, propagationTimeoutMs } = this.#opts
    if (propagationTimeoutMs === 0) return
    if (propagationDelayMs > 0) await sleep(propagationDelayMs, task.signal)
    // the zone's nameservers; the resolvers when those cannot be found, or do not answer from here
    const resolvers = this.#opts.resolvers?.map((r) => [r])
    const servers = await this.#authoritative(fqdn, task.signal)
    await waitForPropagation({
      fqdn,
      value: task.keyAuthorization,
      timeoutMs: propagationTimeoutMs,
      logger: this.#log,
      ...(servers ? { servers, fallback: resolvers ?? [[undefined]] } : resolvers ? { servers: resolvers } : {}),
      ...(task.signal ? { signal: task.signal } : {}),
    })
  }

  async cleanup (task: ChallengeTask): Promise<void> {
    const key = taskKey(task)
    const fqdn = this.#written.get(key)
    if (fqdn === undefined) return
    this.#written.delete(key)
    await this.#call('clean up', fqdn, () => this.#opts.provider.cleanup(fqdn, task.keyAuthorization, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)))
  }

  async #recordName (task: ChallengeTask): Promise<string> {
    const name = `_acme-challenge.${task.identifier.value}`
    if (!this.#opts.followCnames) return name
    try {
      const target = await followCname(name, this.#lookup(task.signal))
      if (target !== name) this.#log.info({ name, target }, 'DNS-01: following the CNAME, the TXT record goes at its target')
      return target
    } catch (err) {
      if (task.signal?.aborted) throw err
      // DNS trouble here also stops the CA: present where no CNAME is the case, and let validation tell
      this.#log.warn({ name, err: (err as Error).message }, 'DNS-01: cannot check for a CNAME; presenting at the name itself')
      return name
    }
  }

  /**
   * The zone's authoritative nameservers, found through the resolvers (CertMagic and lego do the
   * same): asked directly, no resolver's cache stands in the way. A nameserver at the address of
   * one of `resolvers` is asked on that resolver's port. Undefined when they cannot be found.
   */
  async #authoritative (fqdn: string, signal?: AbortSignal): Promise<string[][] | undefined> {
    try {
      const lookup = this.#lookup(signal)
      const zone = this.#opts.provider.zoneFor ? await this.#opts.provider.zoneFor(fqdn, signal) : await findZone(fqdn, lookup)
      const servers = await authoritativeServers(zone, lookup)
      if (servers.length > 0) return servers.map((addresses) => addresses.map((a) => this.#opts.resolvers?.find((r) => hostOf(r) === a) ?? a))
    } catch (err) {
      if (signal?.aborted) throw err
      this.#log.debug({ fqdn, err: (err as Error).message }, `DNS-01: authoritative nameservers not found; checking with the ${this.#opts.resolvers ? 'configured' : 'system'} resolvers`)
    }
    return undefined
  }

  #lookup (signal?: AbortSignal) {
    return { ...(this.#opts.resolvers ? { servers: this.#opts.resolvers } : {}), ...(signal ? { signal } : {}) }
  }

  async #call (action: string, fqdn: string, run: () => Promise<void>): Promise<void> {
    try {
      await run()
    } catch (err) {
      if (isAcmeError(err)) throw err
      const name = this.#opts.provider.name ?? 'the DNS provider'
      throw new AcmeError(ErrorCodes.DNS_PROVIDER, `${name} could not ${action} the TXT record at ${fqdn}: ${(err as Error)?.message ?? String(err)}`, { cause: err, retryable: true })
    }
  }
}

/** The IP address of a `resolvers` entry: '192.0.2.53:5353' -> '192.0.2.53', '[2001:db8::53]:53' -> '2001:db8::53'. */
function hostOf (server: string): string {
  if (server.startsWith('[')) return server.slice(1, server.indexOf(']'))
  return server.split(':').length === 2 ? server.slice(0, server.indexOf(':')) : server
}

function taskKey (task: ChallengeTask): string {
  return `${task.identifier.value}\n${task.keyAuthorization}`
}
