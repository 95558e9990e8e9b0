import type { Identifier } from '../names.js'

export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01'

/** One challenge to prove control of one identifier. */
export interface ChallengeTask {
  identifier: Identifier
  /** the authorization is for a wildcard (`*.` + identifier.value) */
  wildcard: boolean
  type: ChallengeType
  token: string
  /**
   * RFC 8555 key authorization: `token.thumbprint` for HTTP-01 and TLS-ALPN-01; for DNS-01 the
   * TXT value (base64url SHA-256 of it)
   */
  keyAuthorization: string
  signal?: AbortSignal
}

/**
 * Answers one challenge type. present() must have made the proof answerable by every instance
 * (written to storage, not only held in memory) before it resolves: the CA is told to validate
 * right after. cleanup() runs whatever happened, even when the order failed.
 */
export interface ChallengeSolver {
  readonly type: ChallengeType
  /** whether this solver can prove `identifier` (HTTP-01 and TLS-ALPN-01 cannot do wildcards) */
  canSolve (identifier: Identifier, wildcard: boolean): boolean
  present (task: ChallengeTask): Promise<void>
  /** optional: the longest present() may take by design, ms (DNS-01 waits for propagation); the order's deadline grows by it */
  readonly presentTimeoutMs?: number
  /** optional: resolves when the CA has fetched the proof, so the order is polled at once */
  validationSeen? (task: ChallengeTask): Promise<void>
  cleanup (task: ChallengeTask): Promise<void>
}
