import { startPebble, type AcmeProxy } from '@fastify-acme/harness'
import { randomBytes } from 'node:crypto'
import { allServed, startApps, stopApps, testName } from '../lib/apps.js'
import { freshStorageUrl, logDirFor, openStorage, proxyFor, tag, type ScenarioEnv } from '../lib/env.js'
import { addSecret, addStoredSecrets } from '../lib/secrets.js'

export interface CaFaultsParams {
  names: number
  /** how long every certificate may take */
  timeoutMs: number
  /**
   * most injections per fault rule (default unlimited). Below the client's 5 attempts per
   * request, no order can exhaust its in-request retries, so nothing waits for the 1-minute
   * backoff: the fast variant stays a few seconds long.
   */
  faultsPerRule?: number
}

export interface CaFaultsResult {
  names: number
  unissued: number
  retryAfterViolations: number
  /** arrivals inside a Retry-After window, including requests already on their way: context for the figure */
  arrivalsInsideRetryAfter: number
  /** requests the proxy saw, per certificate: bounded, no tight loop */
  requestsPerCertificate: number
  injected: { rateLimited: number, unavailable: number, dropped: number }
  /** Pebble's own badNonce rejections (PEBBLE_WFE_NONCEREJECT=50) */
  badNonces: number
  durationMs: number
  crashed: string[]
}

const RETRY_AFTER_S = 2

/**
 * One app with EAB orders `names` certificates from a Pebble that rejects half of all nonces,
 * through the proxy injecting 429 + Retry-After, 503s and dropped connections at random. Every
 * certificate must be issued, and no request may reach the CA inside a Retry-After it was given.
 */
export async function runCaFaults (env: ScenarioEnv, params: CaFaultsParams): Promise<CaFaultsResult> {
  const run = tag('')
  const eab = { kid: `kid-${run}`, hmacKey: randomBytes(32).toString('base64url') }
  addSecret('EAB HMAC key', eab.hmacKey)
  const pebble = await startPebble({ dnsServer: env.challtestsrv.dnsServer, nonceRejectPercent: 50, eab: { [eab.kid]: eab.hmacKey } })
  const pebbleEnv = { ...env.pebble, directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, tls: pebble.tls }
  const proxy = await proxyFor(pebbleEnv)
  injectFaults(proxy, params.faultsPerRule ?? Number.POSITIVE_INFINITY)
  const storageUrl = await freshStorageUrl(env, 'fs')
  const names = Array.from({ length: params.names }, (_, i) => testName('f', i, run))
  const started = Date.now()
  const [app] = await startApps(env, logDirFor(env, 'ca-faults'), 1, {
    directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, httpPort: pebble.httpPort, storageUrl, names, eab,
  }, { point: names })
  try {
    await allServed([app!], names, params.timeoutMs)
    const durationMs = Date.now() - started
    const storage = await openStorage(env, storageUrl)
    await addStoredSecrets(storage, 'ca-faults')
    await storage.close?.()
    const records = proxy.requests
    return {
      names: names.length,
      unissued: names.filter((n) => !app!.served().has(n)).length,
      retryAfterViolations: retryAfterViolations(proxy),
      arrivalsInsideRetryAfter: arrivalsInsideRetryAfter(proxy),
      requestsPerCertificate: Math.round(records.length / names.length * 10) / 10,
      injected: {
        rateLimited: records.filter((r) => r.injected && r.status === 429).length,
        unavailable: records.filter((r) => r.injected && r.status === 503).length,
        dropped: records.filter((r) => r.injected && r.status === 0).length,
      },
      badNonces: records.filter((r) => !r.injected && r.status === 400).length,
      durationMs,
      crashed: app!.alive ? [] : [app!.id],
    }
  } finally {
    await stopApps([app!])
    await proxy.close()
    await pebble.stop()
  }
}

function injectFaults (proxy: AcmeProxy, times: number): void {
  proxy.inject({ resource: 'newOrder', action: { status: 429, retryAfter: RETRY_AFTER_S, detail: 'too many new orders' } }) // at least one
  proxy.inject({ resource: 'newOrder', probability: 0.3, times, action: { status: 429, retryAfter: RETRY_AFTER_S, detail: 'too many new orders' } })
  proxy.inject({ resource: 'finalize', probability: 0.3, times, action: { status: 503 } })
  proxy.inject({ resource: 'challenge', probability: 0.2, times, action: { status: 503 } })
  proxy.inject({ resource: 'newNonce', probability: 0.1, times, action: { status: 503 } })
  proxy.inject({ resource: 'authz', probability: 0.1, times, action: { drop: true } })
  proxy.inject({ resource: 'order', probability: 0.1, times, action: { drop: true } })
  proxy.inject({ resource: 'certificate', probability: 0.2, times, action: { drop: true } })
}

/** A request arriving this long after a 429 was answered was not already on its way when it was (loopback, loaded 2-core machine). */
const IN_FLIGHT_MS = 500
/** Answers sent within this many ms of each other (on different connections) may be read in either order. */
const REORDER_MS = 50

/**
 * Requests that reached the CA inside a Retry-After the client had read. A request counts when
 * it arrived after the 429 was answered and before its Retry-After ran out, and either it is
 * signed with a nonce the CA handed out more than REORDER_MS after that answer (so it was made
 * after the client read the 429), or it arrived more than IN_FLIGHT_MS after the answer (so it was
 * sent after it). Arrival alone is not proof: when a Retry-After ends every queued request
 * leaves at once, and those still on their way when one of them gets the next 429 are fine.
 */
export function retryAfterViolations (proxy: AcmeProxy): number {
  const issuedAt = new Map<string, number>()
  for (const r of proxy.requests) if (r.replyNonce && r.answeredAt !== undefined) issuedAt.set(r.replyNonce, r.answeredAt)
  const limits = proxy.requests.filter((r) => r.injected && r.status === 429 && r.answeredAt !== undefined)
  return proxy.requests.filter((r) => {
    const nonceIssued = typeof r.protected?.nonce === 'string' ? issuedAt.get(r.protected.nonce) : undefined
    return limits.some((l) => r.at > l.answeredAt! && r.at < l.answeredAt! + RETRY_AFTER_S * 1000 &&
      ((nonceIssued !== undefined && nonceIssued > l.answeredAt! + REORDER_MS) || r.at > l.answeredAt! + IN_FLIGHT_MS))
  }).length
}

/** Requests that merely arrived inside a Retry-After window (more than 50 ms after the 429), made before or after it. */
export function arrivalsInsideRetryAfter (proxy: AcmeProxy): number {
  const limits = proxy.requests.filter((r) => r.injected && r.status === 429 && r.answeredAt !== undefined)
  return proxy.requests.filter((r) => limits.some((l) => r.at > l.answeredAt! + 50 && r.at < l.answeredAt! + RETRY_AFTER_S * 1000)).length
}
