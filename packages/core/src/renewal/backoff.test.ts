import { describe, expect, it } from 'vitest'
import { ErrorCodes } from '../errors.js'
import { MAX_RETRY_DURATION_MS, attemptAllowed, nextAttempt, parseRenewalState, recordFailure, recordSuccess } from './backoff.js'
import type { RenewalState } from './backoff.js'

const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR
const T0 = Date.parse('2026-01-01T00:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()
const failure = { code: ErrorCodes.CA_UNREACHABLE, message: 'connect ECONNREFUSED' }

describe('nextAttempt: the front-loaded schedule', () => {
  // CertMagic async.go: 1m, 2m, 2m, 5m, 10m x3, 20m x4, 30m x6, 1h x3, 2h x2, 3h x2, then 6h
  const schedule: Array<[number, number]> = [
    [1, 1], [2, 2], [3, 2], [4, 5], [5, 10], [7, 10], [8, 20], [11, 20], [12, 30], [17, 30],
    [18, 60], [20, 60], [21, 120], [22, 120], [23, 180], [24, 180], [25, 360], [26, 360], [500, 360],
  ]
  it.each(schedule)('after failure #%i waits %i min', (failures, minutes) => {
    const now = new Date(T0 + HOUR)
    expect(nextAttempt({ failures, firstFailureAt: iso(T0) }, now)).toEqual(new Date(now.getTime() + minutes * MIN))
  })

  it.each([
    ['Retry-After later than the schedule wins', T0 + HOUR, T0 + HOUR],
    ['Retry-After earlier than the schedule is ignored', T0 + 10_000, T0 + MIN],
    ['Retry-After in the past is ignored', T0 - HOUR, T0 + MIN],
  ])('%s', (_, retryAfter, expected) => {
    expect(nextAttempt({ failures: 1, firstFailureAt: iso(T0) }, new Date(T0), new Date(retryAfter))).toEqual(new Date(expected))
  })

  it.each([
    ['1 ms before 30 days: one more attempt', MAX_RETRY_DURATION_MS - 1, false],
    ['30 days after the first failure: gives up', MAX_RETRY_DURATION_MS, true],
    ['40 days after: gives up', 40 * DAY, true],
  ])('%s', (_, elapsed, gaveUp) => {
    const next = nextAttempt({ failures: 130, firstFailureAt: iso(T0) }, new Date(T0 + elapsed), new Date(T0 + 50 * DAY))
    expect(next === null).toBe(gaveUp)
  })

  it('a failing certificate is attempted a bounded number of times over 30 days, then left alone', () => {
    let state: RenewalState | undefined
    let now = T0
    let attempts = 0
    for (;;) {
      attempts++
      state = recordFailure(state, failure, new Date(now))
      if (state.nextAttemptAt === null) break
      now = Date.parse(state.nextAttemptAt)
    }
    // 24 scheduled waits (18 h in all), then every 6 h until 30 days have passed
    expect(attempts).toBe(1 + 24 + Math.ceil((30 * DAY - 18 * HOUR) / (6 * HOUR)))
    expect(now - T0).toBeGreaterThanOrEqual(MAX_RETRY_DURATION_MS)
    expect(now - T0).toBeLessThan(MAX_RETRY_DURATION_MS + 6 * HOUR)
  })
})

describe('recordFailure / recordSuccess', () => {
  const earlier: RenewalState = {
    failures: 3,
    firstFailureAt: iso(T0 - HOUR),
    lastError: { code: ErrorCodes.CA_UNREACHABLE, message: 'x', at: iso(T0 - 5 * MIN) },
    nextAttemptAt: iso(T0),
  }
  it.each<[string, RenewalState | undefined, { code: string, message: string, retryAfter?: Date }, Partial<RenewalState>]>([
    ['first failure', undefined, failure, { failures: 1, firstFailureAt: iso(T0), nextAttemptAt: iso(T0 + MIN) }],
    ['fourth failure keeps the first failure time', earlier, failure, { failures: 4, firstFailureAt: iso(T0 - HOUR), nextAttemptAt: iso(T0 + 5 * MIN) }],
    ['rate limited: Retry-After in 3 h', undefined, { code: ErrorCodes.RATE_LIMITED, message: '429', retryAfter: new Date(T0 + 3 * HOUR) }, { failures: 1, nextAttemptAt: iso(T0 + 3 * HOUR) }],
    ['30 days of failures: no next attempt', { ...earlier, firstFailureAt: iso(T0 - 30 * DAY) }, failure, { failures: 4, nextAttemptAt: null }],
    // a forced renewal failed weeks ago and nothing retried it (the certificate was not due): a new run starts here
    ['an old record nobody acted on for over 12 h is a new run', {
      failures: 1, firstFailureAt: iso(T0 - 31 * DAY), lastError: { code: ErrorCodes.CA_UNREACHABLE, message: 'x', at: iso(T0 - 31 * DAY) }, nextAttemptAt: iso(T0 - 31 * DAY + MIN),
    }, failure, { failures: 1, firstFailureAt: iso(T0), nextAttemptAt: iso(T0 + MIN) }],
  ])('%s', (_, state, error, expected) => {
    const next = recordFailure(state, error, new Date(T0))
    expect(next).toMatchObject(expected)
    expect(next.lastError).toEqual({ code: error.code, message: error.message, at: iso(T0) })
  })

  it('does not change the state it is given', () => {
    const copy = structuredClone(earlier)
    recordFailure(earlier, failure, new Date(T0))
    expect(earlier).toEqual(copy)
  })

  it('keeps at most 500 characters of a long message', () => {
    const state = recordFailure(undefined, { code: 'UNKNOWN', message: '<html>'.repeat(1000) }, new Date(T0))
    expect(state.lastError.message).toHaveLength(503)
  })

  it('success clears the state', () => {
    expect(recordSuccess()).toBeNull()
  })
})

describe('attemptAllowed', () => {
  const state = recordFailure(undefined, failure, new Date(T0))
  it.each([
    ['no state', undefined, T0, true],
    ['before the next attempt time', state, T0 + MIN - 1, false],
    ['at the next attempt time', state, T0 + MIN, true],
    ['gave up', { ...state, nextAttemptAt: null }, T0 + 40 * DAY, false],
  ])('%s: %s', (_, s, now, allowed) => {
    expect(attemptAllowed(s, new Date(now))).toBe(allowed)
  })
})

describe('parseRenewalState', () => {
  const good = recordFailure(undefined, failure, new Date(T0))
  it('reads back what was stored, from bytes or a string', () => {
    expect(parseRenewalState(Buffer.from(JSON.stringify(good)))).toEqual(good)
    expect(parseRenewalState(JSON.stringify({ ...good, nextAttemptAt: null }))).toEqual({ ...good, nextAttemptAt: null })
  })

  it.each([
    ['truncated JSON', JSON.stringify(good).slice(0, 20)],
    ['null', 'null'],
    ['an array', '[]'],
    ['failures 0', JSON.stringify({ ...good, failures: 0 })],
    ['failures a string', JSON.stringify({ ...good, failures: '2' })],
    ['bad firstFailureAt', JSON.stringify({ ...good, firstFailureAt: 'then' })],
    ['missing nextAttemptAt', JSON.stringify({ ...good, nextAttemptAt: undefined })],
    ['lastError without code', JSON.stringify({ ...good, lastError: { message: 'x', at: iso(T0) } })],
  ])('%s is ERR_ACME_STORAGE_CORRUPT', (_, text) => {
    expect(() => parseRenewalState(text)).toThrow(expect.objectContaining({ code: ErrorCodes.STORAGE_CORRUPT }))
  })
})
