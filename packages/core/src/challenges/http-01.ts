import { AcmeError, ErrorCodes } from '../errors.js'
import type { Logger } from '../logger.js'
import { normalizeName } from '../names.js'
import type { Storage } from '../storage/contract.js'
import { StorageKeys } from '../storage/keys.js'
import type { ChallengeSolver, ChallengeTask } from './solver.js'

/** RFC 8555 tokens are base64url; CAs send 43 characters. Anything else is refused unread. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/

/** What is stored per token, so any instance sharing the storage can answer. */
interface StoredHttp01 {
  identifier: string
  keyAuthorization: string
  /** ms since epoch; stale entries are ignored */
  expires: number
}

const TTL_MS = 3600_000

/**
 * Answers HTTP-01 (`GET /.well-known/acme-challenge/<token>`): from memory for orders this
 * instance runs, from storage for orders another instance runs. The Host must be the
 * identifier the token was issued for (DNS rebinding protection, as CertMagic does).
 */
export class Http01Responder implements ChallengeSolver {
  readonly type = 'http-01'
  private readonly pending = new Map<string, StoredHttp01>()
  private readonly seen = new Map<string, () => void>()

  constructor (private readonly storage: Storage, private readonly logger: Logger) {}

  canSolve (_identifier: { type: 'dns' | 'ip' }, wildcard: boolean): boolean {
    return !wildcard
  }

  async present (task: ChallengeTask): Promise<void> {
    const entry: StoredHttp01 = { identifier: task.identifier.value, keyAuthorization: task.keyAuthorization, expires: Date.now() + TTL_MS }
    this.pending.set(task.token, entry)
    await this.storage.put(StorageKeys.http01(task.token), JSON.stringify(entry))
  }

  validationSeen (task: ChallengeTask): Promise<void> {
    return new Promise((resolve) => this.seen.set(task.token, resolve))
  }

  async cleanup (task: ChallengeTask): Promise<void> {
    this.pending.delete(task.token)
    this.seen.delete(task.token)
    await this.storage.delete(StorageKeys.http01(task.token))
  }

  /**
   * The key authorization to answer with, or null (answer 404). Throws
   * ERR_ACME_BAD_CHALLENGE_REQUEST for a malformed token, without touching storage.
   */
  async respond (host: string | undefined, token: string): Promise<string | null> {
    if (!TOKEN.test(token)) throw new AcmeError(ErrorCodes.BAD_CHALLENGE_REQUEST, 'malformed ACME challenge token')
    const entry = this.pending.get(token) ?? await this.load(token)
    if (!entry || entry.expires < Date.now()) return null
    if (!hostMatches(host, entry.identifier)) {
      this.logger.warn({ host, identifier: entry.identifier }, 'HTTP-01 token requested with a Host it was not issued for')
      return null
    }
    this.seen.get(token)?.()
    return entry.keyAuthorization
  }

  private async load (token: string): Promise<StoredHttp01 | null> {
    const bytes = await this.storage.get(StorageKeys.http01(token))
    if (!bytes) return null
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as StoredHttp01
    } catch {
      return null
    }
  }
}

function hostMatches (host: string | undefined, identifier: string): boolean {
  if (!host) return false
  const withoutPort = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '')
  try {
    return normalizeName(withoutPort) === identifier
  } catch {
    return false
  }
}
