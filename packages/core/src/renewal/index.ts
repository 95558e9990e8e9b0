export {
  DEFAULT_RENEWAL_OPTIONS,
  nextCheckAt,
  nextCheckDelay,
  pickAriTime,
  renewalDue,
  renewalTime,
  resolveRenewalOptions,
} from './policy.js'
export type { RenewalOptions, RenewalReason, RenewalTimeInput } from './policy.js'
export {
  MAX_RETRY_DURATION_MS,
  MAX_RETRY_INTERVAL_MS,
  RETRY_INTERVALS_MS,
  attemptAllowed,
  nextAttempt,
  parseRenewalState,
  recordFailure,
  recordSuccess,
} from './backoff.js'
export type { FailureInfo, RenewalState } from './backoff.js'
