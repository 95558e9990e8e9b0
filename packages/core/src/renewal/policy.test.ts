import { describe, expect, it } from 'vitest'
import type { AriState } from '../certificate.js'
import { ErrorCodes, isAcmeError } from '../errors.js'
import { nextCheckAt, nextCheckDelay, pickAriTime, renewalDue, renewalTime, resolveRenewalOptions } from './policy.js'
import type { RenewalOptions, RenewalReason, RenewalTimeInput } from './policy.js'

const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR
const T0 = Date.parse('2026-01-01T00:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()

function cert (lifetimeMs: number, ari?: { start: number, end: number, selected: number | string }): RenewalTimeInput {
  const ariState: AriState | undefined = ari && {
    window: { start: iso(ari.start), end: iso(ari.end) },
    selectedTime: typeof ari.selected === 'string' ? ari.selected : iso(ari.selected),
    nextCheck: iso(T0),
  }
  return { notBefore: iso(T0), notAfter: iso(T0 + lifetimeMs), ari: ariState }
}

describe('renewalTime', () => {
  it.each<[string, RenewalTimeInput, RenewalOptions | undefined, number, RenewalReason]>([
    ['90 days, no ARI: 1/3 remaining', cert(90 * DAY), undefined, T0 + 60 * DAY, 'ratio'],
    ['6 days (short-lived): 1/2 remaining', cert(6 * DAY), undefined, T0 + 3 * DAY, 'ratio'],
    ['exactly 10 days is short-lived', cert(10 * DAY), undefined, T0 + 5 * DAY, 'ratio'],
    ['10 days + 3 ms is not short-lived', cert(10 * DAY + 3), undefined, T0 + Math.floor((10 * DAY + 3) * 2 / 3), 'ratio'],
    ['60 s test certificate: 1/2 remaining', cert(60_000), undefined, T0 + 30_000, 'ratio'],
    ['12 h local CA leaf: 1/2 remaining', cert(12 * HOUR), undefined, T0 + 6 * HOUR, 'ratio'],
    ['custom ratio 1/2', cert(90 * DAY), { ratio: 0.5 }, T0 + 45 * DAY, 'ratio'],
    ['custom short-lived threshold of 5 days', cert(6 * DAY), { shortLivedThresholdMs: 5 * DAY }, T0 + 4 * DAY, 'ratio'],
    ['ratio below the emergency ratio: emergency wins', cert(100 * DAY), { ratio: 0.01 }, T0 + 95 * DAY, 'emergency'],
    ['ARI later than the ratio wins', cert(90 * DAY, { start: T0 + 65 * DAY, end: T0 + 75 * DAY, selected: T0 + 70 * DAY }), undefined, T0 + 70 * DAY, 'ari'],
    ['ARI earlier than the ratio wins', cert(90 * DAY, { start: T0 + 10 * DAY, end: T0 + 30 * DAY, selected: T0 + 20 * DAY }), undefined, T0 + 20 * DAY, 'ari'],
    ['ARI later than 1/20 remaining: emergency', cert(100 * DAY, { start: T0 + 96 * DAY, end: T0 + 99 * DAY, selected: T0 + 98 * DAY }), undefined, T0 + 95 * DAY, 'emergency'],
    ['ARI window entirely past (revocation): now', cert(90 * DAY, { start: T0 - 2 * DAY, end: T0 - DAY, selected: T0 - DAY - HOUR }), undefined, T0 - DAY - HOUR, 'ari'],
    ['stale selection after the window: clamped to its end', cert(90 * DAY, { start: T0 + 5 * DAY, end: T0 + 6 * DAY, selected: T0 + 70 * DAY }), undefined, T0 + 6 * DAY, 'ari'],
    ['stale selection before the window: clamped to its start', cert(90 * DAY, { start: T0 + 65 * DAY, end: T0 + 70 * DAY, selected: T0 + DAY }), undefined, T0 + 65 * DAY, 'ari'],
    ['unreadable selection: window start', cert(90 * DAY, { start: T0 + 65 * DAY, end: T0 + 70 * DAY, selected: 'soon' }), undefined, T0 + 65 * DAY, 'ari'],
    ['custom emergency ratio 1/4 beats ARI', cert(100 * DAY, { start: T0 + 80 * DAY, end: T0 + 90 * DAY, selected: T0 + 85 * DAY }), { emergencyRatio: 0.25 }, T0 + 75 * DAY, 'emergency'],
    ['notAfter before notBefore: notAfter', { notBefore: iso(T0), notAfter: iso(T0 - DAY) }, undefined, T0 - DAY, 'ratio'],
  ])('%s', (_, bundle, opts, at, reason) => {
    expect(renewalTime(bundle, opts)).toEqual({ at: new Date(at), reason })
  })

  it.each([
    ['notBefore', { notBefore: 'yesterday', notAfter: iso(T0) }],
    ['notAfter', { notBefore: iso(T0), notAfter: '' }],
    ['ari.window.start', { ...cert(DAY), ari: { window: { start: 'x', end: iso(T0) }, selectedTime: iso(T0), nextCheck: iso(T0) } }],
  ])('unreadable %s is ERR_ACME_STORAGE_CORRUPT', (field, bundle) => {
    expect(() => renewalTime(bundle)).toThrow(expect.objectContaining({ code: ErrorCodes.STORAGE_CORRUPT, message: expect.stringContaining(field) }))
  })
})

describe('renewalDue', () => {
  const ninety = cert(90 * DAY)
  const withAri = cert(90 * DAY, { start: T0 + 70 * DAY, end: T0 + 72 * DAY, selected: T0 + 71 * DAY })
  it.each([
    ['fresh certificate', ninety, T0 + DAY, false],
    ['1 ms before the ratio point', ninety, T0 + 60 * DAY - 1, false],
    ['at the ratio point', ninety, T0 + 60 * DAY, true],
    ['after expiry', ninety, T0 + 91 * DAY, true],
    ['ratio point passed but ARI says later', withAri, T0 + 65 * DAY, false],
    ['at the ARI selected time', withAri, T0 + 71 * DAY, true],
  ])('%s: %s', (_, bundle, now, due) => {
    expect(renewalDue(bundle, new Date(now))).toBe(due)
  })
})

describe('resolveRenewalOptions', () => {
  it('fills the documented defaults', () => {
    expect(resolveRenewalOptions()).toEqual({
      ratio: 1 / 3, shortLivedRatio: 1 / 2, shortLivedThresholdMs: 10 * DAY, emergencyRatio: 1 / 20, checkIntervalMs: 10 * MIN, checkJitter: 0.1,
    })
  })

  it.each([null, 'often', 5])('refuses renewal = %s with ERR_ACME_INVALID_OPTION', (value) => {
    expect(() => resolveRenewalOptions(value as RenewalOptions)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION, message: expect.stringContaining('"renewal"') }))
  })

  it.each<[keyof RenewalOptions, unknown]>([
    ['ratio', 0], ['ratio', 1], ['ratio', -0.5], ['ratio', '1/3'], ['ratio', Number.NaN],
    ['shortLivedRatio', 1.5], ['emergencyRatio', 0], ['shortLivedThresholdMs', -1],
    ['checkIntervalMs', 0], ['checkIntervalMs', Infinity], ['checkIntervalMs', 2 ** 31], ['checkJitter', 1], ['checkJitter', -0.1],
  ])('refuses %s = %s with ERR_ACME_INVALID_OPTION', (field, value) => {
    let error: unknown
    try { resolveRenewalOptions({ [field]: value }) } catch (err) { error = err }
    expect(isAcmeError(error, ErrorCodes.INVALID_OPTION)).toBe(true)
    expect((error as Error).message).toContain(`renewal.${field}`)
  })
})

describe('nextCheckDelay', () => {
  it.each([
    [undefined, 0, 9 * MIN],
    [undefined, 0.5, 10 * MIN],
    [undefined, 0.75, 10.5 * MIN],
    [{ checkJitter: 0 }, 0.99, 10 * MIN],
    [{ checkIntervalMs: 1000, checkJitter: 0.5 }, 0, 500],
  ])('opts %j with random %s gives %s ms', (opts, random, delay) => {
    expect(nextCheckDelay(opts, () => random)).toBe(delay)
  })

  it('stays within +-jitter for real random numbers', () => {
    for (let i = 0; i < 1000; i++) {
      const delay = nextCheckDelay()
      expect(delay).toBeGreaterThanOrEqual(9 * MIN)
      expect(delay).toBeLessThanOrEqual(11 * MIN)
    }
  })
})

describe('nextCheckAt', () => {
  it.each([
    ['next periodic check comes first', cert(90 * DAY), T0 + DAY, T0 + DAY + 10 * MIN],
    ['renewal time comes before the next check', cert(60_000), T0, T0 + 30_000],
    ['renewal time already past: now', cert(60_000), T0 + 45_000, T0 + 45_000],
  ])('%s', (_, bundle, now, expected) => {
    expect(nextCheckAt(bundle, new Date(now), undefined, () => 0.5)).toEqual(new Date(expected))
  })
})

describe('pickAriTime', () => {
  const now = new Date(T0)
  it.each([
    ['future window, random 0: its start', T0 + DAY, T0 + 3 * DAY, 0, T0 + DAY],
    ['future window, random 0.5: its middle', T0 + DAY, T0 + 3 * DAY, 0.5, T0 + 2 * DAY],
    ['future window, random 0.999: near its end', T0 + DAY, T0 + 2 * DAY, 0.999, T0 + DAY + Math.floor(0.999 * DAY)],
    ['started window: from now', T0 - DAY, T0 + DAY, 0, T0],
    ['started window, random 0.5: halfway from now to end', T0 - DAY, T0 + 2 * HOUR, 0.5, T0 + HOUR],
    ['ended window: now', T0 - 2 * DAY, T0 - DAY, 0.5, T0],
    ['window ending now: now', T0 - DAY, T0, 0.5, T0],
    ['end before start: its end', T0 + 2 * DAY, T0 + DAY, 0.5, T0 + DAY],
  ])('%s', (_, start, end, random, expected) => {
    expect(pickAriTime({ start: new Date(start), end: new Date(end) }, now, () => random)).toEqual(new Date(expected))
  })

  it('is uniform over the window for real random numbers', () => {
    const start = T0 + DAY
    const buckets = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) {
      const t = pickAriTime({ start: new Date(start), end: new Date(start + 4 * HOUR) }, now).getTime()
      expect(t).toBeGreaterThanOrEqual(start)
      expect(t).toBeLessThan(start + 4 * HOUR)
      buckets[Math.floor((t - start) / HOUR)]!++
    }
    for (const count of buckets) expect(count).toBeGreaterThan(850)
  })
})
