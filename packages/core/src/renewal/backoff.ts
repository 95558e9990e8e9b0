import { AcmeError, ErrorCodes } from '../errors.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/**
 * Wait after the 1st, 2nd, ... consecutive failure, in ms: CertMagic's front-loaded schedule
 * (async.go): quick retries for passing glitches, then hours. After the list, every 6 hours.
 */
export const RETRY_INTERVALS_MS: readonly number[] = Object.freeze([
  1, 2, 2, 5, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30, 30, 30,
  60, 60, 60, 120, 120, 180, 180,
].map((minutes) => minutes * MINUTE))

/** The wait after every failure past the schedule: 6 hours. */
export const MAX_RETRY_INTERVAL_MS = 6 * HOUR

/** How long after the first failure attempts stop: 30 days. */
export const MAX_RETRY_DURATION_MS = 30 * 24 * HOUR

/** Longest error message kept in the stored state; CA problem details can carry whole HTML pages. */
const MAX_MESSAGE_LENGTH = 500

/**
 * A certificate's failure state, stored at `StorageKeys.certificateState(primaryName)` so any
 * instance can make the next attempt. Absent while renewals succeed.
 */
export interface RenewalState {
  /** consecutive failed attempts since the last success */
  failures: number
  /** when the first of those failures happened (ISO) */
  firstFailureAt: string
  /** the last failure: its AcmeError code (or 'UNKNOWN'), message and time (ISO) */
  lastError: { code: string, message: string, at: string }
  /** when the next attempt may start (ISO); null once attempts stopped, 30 days after the first failure */
  nextAttemptAt: string | null
}

/** What `recordFailure` keeps of a failed attempt. */
export interface FailureInfo {
  code: string
  message: string
  /** the CA's Retry-After: the next attempt is never earlier */
  retryAfter?: Date
}

/**
 * When to try again after `state.failures` consecutive failures (counting the one that just
 * happened at `now`): now plus the schedule's interval, but never before `retryAfter`. Null
 * once 30 days have passed since `firstFailureAt`: the caller stops trying on its own.
 */
export function nextAttempt (state: { failures: number, firstFailureAt: string }, now: Date, retryAfter?: Date): Date | null {
  const first = Date.parse(state.firstFailureAt)
  const since = Number.isNaN(first) ? 0 : now.getTime() - first
  if (since >= MAX_RETRY_DURATION_MS) return null
  const index = Math.max(0, Math.floor(state.failures) - 1)
  const wait = RETRY_INTERVALS_MS[index] ?? MAX_RETRY_INTERVAL_MS
  const at = Math.max(now.getTime() + wait, retryAfter?.getTime() ?? 0)
  return new Date(at)
}

/**
 * The state after one more failure at `now`. `state` is the stored one, or undefined after a
 * success; an unreadable one (see `parseRenewalState`) should be passed as undefined.
 */
export function recordFailure (state: RenewalState | undefined, error: FailureInfo, now: Date): RenewalState {
  // A record nobody acted on for longer than any retry interval belongs to an earlier run of
  // failures (a forced renewal of a certificate not yet due, whose next attempt never came):
  // counting from it would stop attempts at the first failure once 30 days had passed.
  const lastActivity = state ? Math.max(Date.parse(state.lastError.at) || 0, state.nextAttemptAt ? Date.parse(state.nextAttemptAt) || 0 : 0) : 0
  if (state && now.getTime() - lastActivity > 2 * MAX_RETRY_INTERVAL_MS) state = undefined
  const failures = (state?.failures ?? 0) + 1
  const firstFailureAt = state?.firstFailureAt ?? now.toISOString()
  const message = error.message.length > MAX_MESSAGE_LENGTH ? `${error.message.slice(0, MAX_MESSAGE_LENGTH)}...` : error.message
  return {
    failures,
    firstFailureAt,
    lastError: { code: error.code, message, at: now.toISOString() },
    nextAttemptAt: nextAttempt({ failures, firstFailureAt }, now, error.retryAfter)?.toISOString() ?? null,
  }
}

/** The state after a success: none. The caller deletes `StorageKeys.certificateState`. */
export function recordSuccess (): null {
  return null
}

/** Whether an attempt may start at `now`: no failure state, or its next attempt time has come. */
export function attemptAllowed (state: RenewalState | null | undefined, now: Date): boolean {
  if (!state) return true
  return state.nextAttemptAt !== null && Date.parse(state.nextAttemptAt) <= now.getTime()
}

/** Parses a stored RenewalState. Throws ERR_ACME_STORAGE_CORRUPT if the bytes are not one. */
export function parseRenewalState (bytes: Uint8Array | string): RenewalState {
  let value: unknown
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'))
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, 'stored renewal state is not JSON', { cause })
  }
  const s = value as Partial<RenewalState> | null
  const isTime = (v: unknown) => typeof v === 'string' && !Number.isNaN(Date.parse(v))
  const ok = typeof s === 'object' && s !== null &&
    Number.isInteger(s.failures) && (s.failures as number) >= 1 &&
    isTime(s.firstFailureAt) &&
    (s.nextAttemptAt === null || isTime(s.nextAttemptAt)) &&
    typeof s.lastError === 'object' && s.lastError !== null &&
    typeof s.lastError.code === 'string' && typeof s.lastError.message === 'string' && isTime(s.lastError.at)
  if (!ok) throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, 'stored renewal state has missing or malformed fields')
  return s as RenewalState
}
