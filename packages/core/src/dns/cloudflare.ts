import { sleep } from '../acme/transport.js'
import type { Dns01Provider } from '../challenges/dns-01.js'
import { AcmeError, ErrorCodes, invalidOption } from '../errors.js'

/** Options of cloudflareProvider(): TXT records through the Cloudflare API v4. */
export interface CloudflareOptions {
  /**
   * API token with Zone:Read and DNS:Edit permissions on the zones (Bearer authentication; the
   * legacy global API key is not supported). Never logged nor put in an error.
   */
  apiToken: string
  /** the zone's ID; default: looked up by name, the closest enclosing zone the token can see */
  zoneId?: string
  /** TTL of the TXT records in seconds: 1 (automatic) or 60 to 86 400 (default 60) */
  ttl?: number
  /** API base URL (default 'https://api.cloudflare.com/client/v4') */
  baseUrl?: string
  /** longest wait for one API response, in ms (default 15 000) */
  timeoutMs?: number
  /** how many times a 429 or 5xx answer is retried, after Retry-After or a growing pause (default 3) */
  retries?: number
}

interface Envelope<T> {
  success?: boolean
  errors?: Array<{ code?: number, message?: string }>
  result?: T
}

interface DnsRecord { id: string, name: string, type: string, content: string }
interface Zone { id: string, name: string }

const IDENTICAL_RECORD = 81058
const RECORD_NOT_FOUND = 81044

/** A Dns01Provider for zones hosted on Cloudflare. */
export function cloudflareProvider (options: CloudflareOptions): Dns01Provider {
  const opts = validate(options)
  const zones = new Map<string, Promise<Zone>>()

  async function api<T> (method: string, path: string, what: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(opts.timeoutMs)
      let res: Response
      try {
        res = await fetch(`${opts.baseUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${opts.apiToken}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        })
      } catch (err) {
        if (signal?.aborted) throw err
        throw failure(`${what}: ${timeout.aborted ? `no answer within ${opts.timeoutMs} ms` : (err as Error).message}`, { cause: err, retryable: true })
      }
      const envelope = await res.json().catch(() => undefined) as Envelope<T> | undefined
      if (res.ok && envelope?.success === true) return envelope.result as T
      const retryable = res.status === 429 || res.status >= 500
      if (retryable && attempt < opts.retries) {
        await sleep(retryAfterMs(res.headers.get('retry-after')) ?? 250 * 2 ** attempt, signal)
        continue
      }
      throw apiError(what, res.status, envelope, retryable)
    }
  }

  async function lookupZone (fqdn: string, signal?: AbortSignal): Promise<Zone> {
    if (opts.zoneId) return api<Zone>('GET', `/zones/${encodeURIComponent(opts.zoneId)}`, `reading zone ${opts.zoneId}`, undefined, signal)
    const labels = fqdn.split('.')
    for (let i = 0; i < labels.length - 1; i++) {
      const name = labels.slice(i).join('.')
      const found = await api<Zone[]>('GET', `/zones?name=${encodeURIComponent(name)}&per_page=5`, `looking up zone ${name}`, undefined, signal)
      const zone = found?.find((z) => z.name.toLowerCase() === name)
      if (zone) return zone
    }
    throw failure(`no zone for ${fqdn} is visible to this API token (it needs Zone:Read on the zone, or set "zoneId")`)
  }

  function zoneOf (fqdn: string, signal?: AbortSignal): Promise<Zone> {
    const name = fqdn.toLowerCase().replace(/\.$/, '')
    let zone = zones.get(name)
    if (!zone) {
      zone = lookupZone(name, signal)
      zones.set(name, zone)
      zone.catch(() => zones.delete(name))
    }
    return zone
  }

  return {
    name: 'cloudflare',
    zoneFor: async (fqdn, signal) => (await zoneOf(fqdn, signal)).name,

    async present (fqdn, value, signal) {
      const zone = await zoneOf(fqdn, signal)
      try {
        // TXT content as quoted character-strings, the form the API documents
        await api('POST', `/zones/${zone.id}/dns_records`, `creating TXT ${fqdn}`, { type: 'TXT', name: fqdn, content: `"${value}"`, ttl: opts.ttl, comment: 'ACME DNS-01 challenge' }, signal)
      } catch (err) {
        if ((err as CloudflareError).codes?.includes(IDENTICAL_RECORD)) return
        throw err
      }
    },

    async cleanup (fqdn, value, signal) {
      const zone = await zoneOf(fqdn, signal)
      const records = await api<DnsRecord[]>('GET', `/zones/${zone.id}/dns_records?type=TXT&name=${encodeURIComponent(fqdn)}&per_page=100`, `listing TXT ${fqdn}`, undefined, signal)
      for (const record of records.filter((r) => unquote(r.content) === value)) {
        try {
          await api('DELETE', `/zones/${zone.id}/dns_records/${record.id}`, `deleting TXT ${fqdn}`, undefined, signal)
        } catch (err) {
          if (!(err as CloudflareError).codes?.includes(RECORD_NOT_FOUND)) throw err
        }
      }
    },
  }
}

type CloudflareError = AcmeError & { codes?: number[] }

function apiError (what: string, status: number, envelope: Envelope<unknown> | undefined, retryable: boolean): CloudflareError {
  const errors = envelope?.errors ?? []
  const detail = errors.length > 0 ? errors.map((e) => `${e.code ?? '?'} ${e.message ?? ''}`.trim()).join('; ') : 'no error details in the response'
  const err: CloudflareError = failure(`${what} failed (HTTP ${status}): ${detail}`, { status, retryable })
  err.codes = errors.map((e) => Number(e.code))
  return err
}

function failure (message: string, details: { cause?: unknown, status?: number, retryable?: boolean } = {}): AcmeError {
  return new AcmeError(ErrorCodes.DNS_PROVIDER, `cloudflare: ${message}`, details)
}

/** TXT content as the API returns it, quoted or not, as the one string it stands for. */
function unquote (content: string): string {
  const parts = content.match(/"((?:[^"\\]|\\.)*)"/g)
  if (!parts) return content
  return parts.map((p) => p.slice(1, -1).replace(/\\(.)/g, '$1')).join('')
}

function retryAfterMs (header: string | null): number | undefined {
  if (!header) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.min(Math.max(seconds, 0) * 1000, 60_000)
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.min(Math.max(at - Date.now(), 0), 60_000)
}

function validate (options: CloudflareOptions): Required<Omit<CloudflareOptions, 'zoneId'>> & { zoneId?: string } {
  if (options === null || typeof options !== 'object') invalidOption('cloudflare', options, 'an object { apiToken, ... }')
  if (typeof options.apiToken !== 'string' || !/^[\x21-\x7e]+$/.test(options.apiToken)) {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, 'option "cloudflare.apiToken" must be a Cloudflare API token (value not shown: it is a secret)')
  }
  const ttl = options.ttl ?? 60
  if (!Number.isSafeInteger(ttl) || (ttl !== 1 && (ttl < 60 || ttl > 86_400))) invalidOption('cloudflare.ttl', ttl, '1 (automatic) or 60 to 86400 seconds')
  const baseUrl = (options.baseUrl ?? 'https://api.cloudflare.com/client/v4').replace(/\/$/, '')
  if (!/^https?:\/\//.test(baseUrl)) invalidOption('cloudflare.baseUrl', options.baseUrl, 'an http(s) URL')
  const timeoutMs = options.timeoutMs ?? 15_000
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) invalidOption('cloudflare.timeoutMs', timeoutMs, 'a positive whole number of ms')
  const retries = options.retries ?? 3
  if (!Number.isSafeInteger(retries) || retries < 0) invalidOption('cloudflare.retries', retries, 'a whole number, 0 or more')
  if (options.zoneId !== undefined && (typeof options.zoneId !== 'string' || options.zoneId === '')) invalidOption('cloudflare.zoneId', options.zoneId, 'a zone ID')
  return { apiToken: options.apiToken, ttl, baseUrl, timeoutMs, retries, ...(options.zoneId ? { zoneId: options.zoneId } : {}) }
}
