import type { ResourceRecordSet, Route53Client, Route53ClientConfig } from '@aws-sdk/client-route-53'
import { sleep } from '../acme/transport.js'
import type { Dns01Provider } from '../challenges/dns-01.js'
import { AcmeError, ErrorCodes, invalidOption } from '../errors.js'

/** Options of route53Provider(): TXT records in Amazon Route 53 through @aws-sdk/client-route-53. */
export interface Route53Options {
  /** an existing client, used as it is (region, credentials, endpoint, retries) */
  client?: Route53Client
  /**
   * settings for a new Route53Client when `client` is not given: credentials, endpoint,
   * maxAttempts, ... (region default 'us-east-1'; credentials default to the SDK's chain:
   * environment, shared config, instance or task role). Credentials are never logged.
   */
  clientConfig?: Route53ClientConfig
  /** hosted zone ID ('Z123...' or '/hostedzone/Z123...'); default: the public hosted zone closest to the record's name */
  hostedZoneId?: string
  /** TTL of a new TXT set, in seconds (default 60); a set that exists keeps its TTL */
  ttl?: number
  /** present() resolves only when the change is INSYNC on every Route 53 server (default true) */
  waitForSync?: boolean
  /** pause between GetChange polls while PENDING, in ms (default 2000) */
  pollIntervalMs?: number
  /** longest wait for INSYNC, in ms (default 180 000) */
  syncTimeoutMs?: number
}

type Sdk = typeof import('@aws-sdk/client-route-53')

/** How often a change may find the set changed by another writer before giving up. */
const MAX_CONFLICTS = 5

/**
 * A Dns01Provider for Route 53. Present replaces the name's TXT set with the value added, so
 * other values at the name stay; cleanup replaces it without the value, or deletes the set
 * when it was the last. Each change is conditional on the set read (see replaceSet), so other
 * instances' values are never lost; changes to one name are serialized in this process. The
 * SDK is an optional peer dependency, loaded at the first call.
 */
export function route53Provider (options: Route53Options = {}): Dns01Provider {
  const opts = validate(options)
  let loaded: Promise<{ sdk: Sdk, client: Route53Client }> | undefined
  const zones = new Map<string, Promise<{ id: string, name: string }>>()
  const queues = new Map<string, Promise<unknown>>()

  function load () {
    loaded ??= import('@aws-sdk/client-route-53').then(
      (sdk) => ({ sdk, client: opts.client ?? new sdk.Route53Client({ region: 'us-east-1', ...opts.clientConfig }) }),
      (err: unknown) => {
        loaded = undefined
        throw failure('the route53 provider needs @aws-sdk/client-route-53 (an optional peer dependency of @fastify-acme/core): npm install @aws-sdk/client-route-53', err)
      })
    return loaded
  }

  async function call<T> (what: string, run: (sdk: Sdk, client: Route53Client) => Promise<T>): Promise<T> {
    const { sdk, client } = await load()
    try {
      return await run(sdk, client)
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number }, $retryable?: unknown }
      const status = e.$metadata?.httpStatusCode
      const retryable = e.name === 'Throttling' || e.name === 'PriorRequestNotComplete' || (status !== undefined && status >= 500)
      throw failure(`${what} failed: ${e.name}: ${e.message}`, err, { retryable, ...(status ? { status } : {}) })
    }
  }

  async function findZone (fqdn: string, signal?: AbortSignal): Promise<{ id: string, name: string }> {
    if (opts.hostedZoneId) {
      const id = opts.hostedZoneId
      const zone = await call(`reading hosted zone ${id}`, (sdk, c) => c.send(new sdk.GetHostedZoneCommand({ Id: id }), { abortSignal: signal }))
      return { id, name: trimDot(zone.HostedZone?.Name ?? '') }
    }
    const labels = fqdn.split('.')
    for (let i = 0; i < labels.length - 1; i++) {
      const name = labels.slice(i).join('.')
      const res = await call(`looking up hosted zone ${name}`, (sdk, c) => c.send(new sdk.ListHostedZonesByNameCommand({ DNSName: name, MaxItems: 10 }), { abortSignal: signal }))
      const zone = res.HostedZones?.find((z) => trimDot(z.Name ?? '') === name && z.Config?.PrivateZone !== true)
      if (zone?.Id) return { id: zone.Id, name }
    }
    throw failure(`no public hosted zone for ${fqdn} is visible to these credentials (set "hostedZoneId" for a private zone)`)
  }

  function zoneOf (fqdn: string, signal?: AbortSignal) {
    let zone = zones.get(fqdn)
    if (!zone) {
      zone = findZone(fqdn, signal)
      zones.set(fqdn, zone)
      zone.catch(() => zones.delete(fqdn))
    }
    return zone
  }

  async function currentSet (zoneId: string, fqdn: string, signal?: AbortSignal): Promise<ResourceRecordSet | undefined> {
    const res = await call(`reading TXT ${fqdn}`, (sdk, c) => c.send(new sdk.ListResourceRecordSetsCommand({
      HostedZoneId: zoneId, StartRecordName: fqdn, StartRecordType: 'TXT', MaxItems: 1,
    }), { abortSignal: signal }))
    const set = res.ResourceRecordSets?.[0]
    return set && set.Type === 'TXT' && trimDot(set.Name ?? '').toLowerCase() === fqdn && !set.SetIdentifier ? set : undefined
  }

  /**
   * Replaces the TXT set `from` (as read; undefined: none) by `values` (empty: none) in one batch:
   * DELETE of the exact set read, then CREATE. Route 53 refuses the whole batch
   * (InvalidChangeBatch) when the set changed since it was read, so another instance's value
   * is never overwritten: the caller reads again and retries.
   */
  async function replaceSet (zoneId: string, fqdn: string, from: ResourceRecordSet | undefined, values: string[], signal?: AbortSignal): Promise<string | undefined> {
    const Changes = [
      ...(from ? [{ Action: 'DELETE' as const, ResourceRecordSet: from }] : []),
      ...(values.length > 0 ? [{ Action: 'CREATE' as const, ResourceRecordSet: recordSet(fqdn, values, from?.TTL ?? opts.ttl) }] : []),
    ]
    const res = await call(`changing TXT ${fqdn}`, (sdk, c) => c.send(new sdk.ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: { Comment: 'ACME DNS-01 challenge', Changes },
    }), { abortSignal: signal }))
    return res.ChangeInfo?.Status === 'INSYNC' ? undefined : res.ChangeInfo?.Id
  }

  /** Reads the set, lets `next` say what its values become (undefined: nothing to do), writes it; again when another writer came between. */
  async function updateSet (zoneId: string, fqdn: string, next: (values: string[]) => string[] | undefined, signal?: AbortSignal): Promise<string | undefined> {
    for (let attempt = 1; ; attempt++) {
      const set = await currentSet(zoneId, fqdn, signal)
      const values = next(valuesOf(set))
      if (!values) return undefined
      try {
        return await replaceSet(zoneId, fqdn, set, values, signal)
      } catch (err) {
        // only the refusals that say the set is no longer what was read (others, like a name outside the zone, stay)
        const cause = (err as AcmeError).cause as Error | undefined
        if (cause?.name === 'InvalidChangeBatch' && /Tried to (delete|create) resource record set/.test(cause.message) && attempt < MAX_CONFLICTS) {
          await sleep(100 + Math.random() * 400 * attempt, signal)
          continue
        }
        throw err
      }
    }
  }

  async function waitInSync (changeId: string, fqdn: string, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + opts.syncTimeoutMs
    for (;;) {
      await sleep(Math.min(opts.pollIntervalMs, Math.max(deadline - Date.now(), 0)), signal)
      const res = await call(`GetChange ${changeId}`, (sdk, c) => c.send(new sdk.GetChangeCommand({ Id: changeId }), { abortSignal: signal }))
      if (res.ChangeInfo?.Status === 'INSYNC') return
      if (Date.now() >= deadline) {
        throw failure(`the change for TXT ${fqdn} (${changeId}) was still ${res.ChangeInfo?.Status ?? 'unknown'} after ${opts.syncTimeoutMs} ms (syncTimeoutMs)`, undefined, { retryable: true })
      }
    }
  }

  /** runs `work` after every earlier change to the same name in this process has finished */
  function serialized<T> (fqdn: string, work: () => Promise<T>): Promise<T> {
    const before = queues.get(fqdn) ?? Promise.resolve()
    const run = before.then(work, work)
    const tail = run.catch(() => {})
    queues.set(fqdn, tail)
    tail.then(() => { if (queues.get(fqdn) === tail) queues.delete(fqdn) })
    return run
  }

  return {
    name: 'route53',
    presentTimeoutMs: opts.waitForSync ? opts.syncTimeoutMs : 0,
    zoneFor: async (fqdn, signal) => (await zoneOf(normalize(fqdn), signal)).name,

    async present (rawFqdn, value, signal) {
      const fqdn = normalize(rawFqdn)
      const zone = await zoneOf(fqdn, signal)
      const changeId = await serialized(fqdn, () => updateSet(zone.id, fqdn, (values) => values.includes(value) ? undefined : [...values, value], signal))
      if (changeId && opts.waitForSync) await waitInSync(changeId, fqdn, signal)
    },

    async cleanup (rawFqdn, value, signal) {
      const fqdn = normalize(rawFqdn)
      const zone = await zoneOf(fqdn, signal)
      await serialized(fqdn, () => updateSet(zone.id, fqdn, (values) => values.includes(value) ? values.filter((v) => v !== value) : undefined, signal))
    },
  }
}

function recordSet (fqdn: string, values: string[], ttl: number): ResourceRecordSet {
  return { Name: fqdn, Type: 'TXT', TTL: ttl, ResourceRecords: values.map((v) => ({ Value: `"${v.replace(/["\\]/g, '\\$&')}"` })) }
}

/** The strings of a TXT set: Route 53 gives each value as quoted character-strings, `"a" "b"` meaning "ab". */
function valuesOf (set: ResourceRecordSet | undefined): string[] {
  return (set?.ResourceRecords ?? []).map((r) => {
    const parts = (r.Value ?? '').match(/"((?:[^"\\]|\\.)*)"/g)
    return parts ? parts.map((p) => p.slice(1, -1).replace(/\\(.)/g, '$1')).join('') : r.Value ?? ''
  })
}

function normalize (fqdn: string): string {
  return trimDot(fqdn).toLowerCase()
}

function trimDot (name: string): string {
  return name.replace(/\.$/, '')
}

function failure (message: string, cause?: unknown, details: { retryable?: boolean, status?: number } = {}): AcmeError {
  return new AcmeError(ErrorCodes.DNS_PROVIDER, `route53: ${message}`, { ...(cause ? { cause } : {}), ...details })
}

function validate (options: Route53Options) {
  if (options === null || typeof options !== 'object') invalidOption('route53', options, 'an object')
  const ttl = options.ttl ?? 60
  if (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > 2 ** 31 - 1) invalidOption('route53.ttl', ttl, 'a whole number of seconds')
  const pollIntervalMs = options.pollIntervalMs ?? 2000
  if (!Number.isSafeInteger(pollIntervalMs) || pollIntervalMs <= 0) invalidOption('route53.pollIntervalMs', pollIntervalMs, 'a positive whole number of ms')
  const syncTimeoutMs = options.syncTimeoutMs ?? 180_000
  if (!Number.isSafeInteger(syncTimeoutMs) || syncTimeoutMs <= 0) invalidOption('route53.syncTimeoutMs', syncTimeoutMs, 'a positive whole number of ms')
  if (options.client !== undefined && typeof (options.client as { send?: unknown })?.send !== 'function') invalidOption('route53.client', options.client, 'a Route53Client')
  if (options.hostedZoneId !== undefined && (typeof options.hostedZoneId !== 'string' || options.hostedZoneId === '')) {
    invalidOption('route53.hostedZoneId', options.hostedZoneId, 'a hosted zone ID')
  }
  return { ...options, ttl, pollIntervalMs, syncTimeoutMs, waitForSync: options.waitForSync !== false }
}
