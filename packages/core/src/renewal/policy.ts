import type { CertificateBundle } from '../certificate.js'
import { AcmeError, ErrorCodes, invalidOption } from '../errors.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/**
 * When certificates are renewed. Every field is optional; `resolveRenewalOptions` fills the
 * defaults and refuses bad values with ERR_ACME_INVALID_OPTION.
 */
export interface RenewalOptions {
  /**
   * Without ARI, renew once this fraction of the certificate's lifetime remains.
   * Default 1/3 (30 days left of a 90-day certificate), as CertMagic, certbot 4 and lego 5.
   */
  ratio?: number
  /**
   * The fraction used instead of `ratio` for certificates whose lifetime is at most
   * `shortLivedThresholdMs`, so a 6-day certificate gets 3 days of retries. Default 1/2.
   */
  shortLivedRatio?: number
  /** Lifetimes up to this many ms count as short-lived. Default 10 days. */
  shortLivedThresholdMs?: number
  /**
   * Renew at once, whatever ARI or `ratio` say, once less than this fraction of the lifetime
   * remains (4.5 days of a 90-day certificate, 7.2 hours of a 6-day one). It guards against a
   * bad ARI window and against a `ratio` set too low. Default 1/20, CertMagic's override when
   * ARI says wait; CertMagic's last-resort 1/50 is later than this, so it is not needed here.
   */
  emergencyRatio?: number
  /** How often each instance checks its certificates, in ms. Default 10 minutes. */
  checkIntervalMs?: number
  /**
   * Random spread of each check interval as a fraction, so instances of a cluster do not check in
   * step: 0.1 means +-10 %. Default 0.1.
   */
  checkJitter?: number
}

/** The defaults documented on RenewalOptions. */
export const DEFAULT_RENEWAL_OPTIONS: Readonly<Required<RenewalOptions>> = Object.freeze({
  ratio: 1 / 3,
  shortLivedRatio: 1 / 2,
  shortLivedThresholdMs: 10 * DAY,
  emergencyRatio: 1 / 20,
  checkIntervalMs: 10 * MINUTE,
  checkJitter: 0.1,
})

const fraction: [(v: number) => boolean, string] = [(v) => v > 0 && v < 1, 'a number between 0 and 1 (exclusive)']
const duration: [(v: number) => boolean, string] = [(v) => v > 0, 'a positive number of ms']
const RANGES: Record<keyof RenewalOptions, [(v: number) => boolean, string]> = {
  ratio: fraction,
  shortLivedRatio: fraction,
  emergencyRatio: fraction,
  shortLivedThresholdMs: duration,
  // a timer's delay: Node fires at once past 2^31-1 ms (~24.8 days), which would loop every 1 ms
  checkIntervalMs: [(v) => v > 0 && v <= 2 ** 31 - 1, 'a positive number of ms, at most 2147483647 (~24.8 days)'],
  checkJitter: [(v) => v >= 0 && v < 1, 'a number in [0, 1)'],
}

/** Fills defaults and validates; throws ERR_ACME_INVALID_OPTION naming the bad `renewal.*` field. */
export function resolveRenewalOptions (opts: RenewalOptions | undefined = {}): Required<RenewalOptions> {
  if (typeof opts !== 'object' || opts === null) invalidOption('renewal', opts, 'an object')
  const out = { ...DEFAULT_RENEWAL_OPTIONS }
  for (const key of Object.keys(out) as Array<keyof RenewalOptions>) {
    const value = opts[key]
    if (value === undefined) continue
    const [ok, expected] = RANGES[key]
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) invalidOption(`renewal.${key}`, value, expected)
    out[key] = value
  }
  return out
}

/** Why a certificate is due when it is: its ARI window, the lifetime ratio, or the emergency override. */
export type RenewalReason = 'ari' | 'ratio' | 'emergency'

export type RenewalTimeInput = Pick<CertificateBundle, 'notBefore' | 'notAfter' | 'ari'>

/**
 * When a certificate should be renewed. ARI comes first: its `selectedTime` (kept inside the
 * CA's window), which may be later than the ratio says; without ARI, the lifetime ratio.
 * The emergency override wins whenever it is sooner. A time in the past means renew now.
 *
 * Callers that check on an interval should also set a timer for `at` when it comes before the
 * next check (RFC 9773 §4.2), since short-lived certificates can expire between two checks.
 */
export function renewalTime (bundle: RenewalTimeInput, opts?: RenewalOptions): { at: Date, reason: RenewalReason } {
  const o = resolveRenewalOptions(opts)
  const notBefore = parseTime(bundle.notBefore, 'notBefore')
  const notAfter = parseTime(bundle.notAfter, 'notAfter')
  const lifetime = Math.max(0, notAfter - notBefore)
  const ratio = lifetime <= o.shortLivedThresholdMs ? o.shortLivedRatio : o.ratio
  const emergency = notAfter - lifetime * o.emergencyRatio
  let at = notAfter - lifetime * ratio
  let reason: RenewalReason = 'ratio'
  if (bundle.ari) {
    const start = parseTime(bundle.ari.window.start, 'ari.window.start')
    const end = parseTime(bundle.ari.window.end, 'ari.window.end')
    const selected = Date.parse(bundle.ari.selectedTime)
    // a stale or missing selection (the CA moved its window) is clamped into the current window
    at = Number.isNaN(selected) ? start : Math.min(Math.max(selected, start), Math.max(start, end))
    reason = 'ari'
  }
  if (emergency < at) {
    at = emergency
    reason = 'emergency'
  }
  return { at: new Date(Math.floor(at)), reason }
}

/** Whether the certificate should be renewed at `now`. */
export function renewalDue (bundle: RenewalTimeInput, now: Date, opts?: RenewalOptions): boolean {
  return renewalTime(bundle, opts).at.getTime() <= now.getTime()
}

/** ms until the next periodic check: `checkIntervalMs` spread by +-`checkJitter`. `random` returns [0, 1). */
export function nextCheckDelay (opts?: RenewalOptions, random: () => number = Math.random): number {
  const o = resolveRenewalOptions(opts)
  return Math.round(o.checkIntervalMs * (1 + o.checkJitter * (2 * random() - 1)))
}

/**
 * When to look at a certificate next: the next jittered periodic check, or its renewal time
 * if that comes first; never before `now`.
 */
export function nextCheckAt (bundle: RenewalTimeInput, now: Date, opts?: RenewalOptions, random: () => number = Math.random): Date {
  const check = now.getTime() + nextCheckDelay(opts, random)
  return new Date(Math.max(now.getTime(), Math.min(check, renewalTime(bundle, opts).at.getTime())))
}

/**
 * A uniformly random time inside an ARI suggested window (RFC 9773 §4.2), chosen once and
 * stored as `ari.selectedTime` so every instance renews at the same time. The part of the
 * window already past is skipped; a window that has ended gives `now`. A window whose end
 * is before its start gives its end.
 */
export function pickAriTime (window: { start: Date, end: Date }, now: Date, random: () => number = Math.random): Date {
  const end = window.end.getTime()
  if (end <= now.getTime()) return new Date(now.getTime())
  const start = Math.max(window.start.getTime(), now.getTime())
  if (start >= end) return new Date(end)
  return new Date(Math.floor(start + random() * (end - start)))
}

function parseTime (value: string, field: string): number {
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `certificate metadata has an unreadable ${field}: ${JSON.stringify(String(value).slice(0, 40))}`)
  return ms
}
