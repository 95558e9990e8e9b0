import type { SecureContext } from 'node:tls'
import type { Logger } from '../logger.js'
import { normalizeName } from '../names.js'
import type { Storage } from '../storage/contract.js'
import { StorageKeys } from '../storage/keys.js'
import type { ChallengeSolver, ChallengeTask } from './solver.js'
import { createTlsAlpnChallenge, tlsAlpnServername } from './tls-alpn-01.js'

/** Stored per identifier, so the instance the CA reaches can build the same challenge certificate. */
interface StoredTlsAlpn {
  identifier: { type: 'dns' | 'ip', value: string }
  keyAuthorization: string
  expires: number
}

const TTL_MS = 3600_000

/**
 * Answers TLS-ALPN-01 (RFC 8737): the host calls contextFor() (memory) or loadContext()
 * (memory, then storage) when a handshake asks for `acme-tls/1`, and serves that context
 * instead of the real certificate. Normal clients never see a challenge certificate.
 */
export class TlsAlpnResponder implements ChallengeSolver {
  readonly type = 'tls-alpn-01'
  /** the challenges this instance presented: current until its own cleanup() */
  private readonly contexts = new Map<string, { context: SecureContext, expires: number }>()
  /**
   * Contexts built from another instance's stored challenge, by key authorization. Only a cache:
   * that instance's cleanup() and its next order happen elsewhere, so storage is read at every
   * `acme-tls/1` handshake (a CA's; they are few) and says which one is current.
   */
  private readonly loaded = new Map<string, { keyAuthorization: string, context: SecureContext, expires: number }>()
  private readonly seen = new Map<string, () => void>()

  constructor (private readonly storage: Storage, private readonly logger: Logger) {}

  canSolve (_identifier: { type: 'dns' | 'ip' }, wildcard: boolean): boolean {
    return !wildcard
  }

  async present (task: ChallengeTask): Promise<void> {
    const entry: StoredTlsAlpn = { identifier: task.identifier, keyAuthorization: task.keyAuthorization, expires: Date.now() + TTL_MS }
    const { context } = await createTlsAlpnChallenge(task.identifier, task.keyAuthorization)
    const servername = tlsAlpnServername(task.identifier)
    this.contexts.set(servername, { context, expires: entry.expires })
    await this.storage.put(StorageKeys.tlsAlpn01(servername), JSON.stringify(entry))
  }

  validationSeen (task: ChallengeTask): Promise<void> {
    return new Promise((resolve) => this.seen.set(tlsAlpnServername(task.identifier), resolve))
  }

  async cleanup (task: ChallengeTask): Promise<void> {
    const servername = tlsAlpnServername(task.identifier)
    this.contexts.delete(servername)
    this.seen.delete(servername)
    await this.storage.delete(StorageKeys.tlsAlpn01(servername))
  }

  /**
   * The challenge context held in memory for the SNI `servername` (the name, or for an IP its
   * in-addr.arpa / ip6.arpa name, RFC 8738), if any. Synchronous, for ALPNCallback.
   */
  contextFor (servername: string): SecureContext | undefined {
    const name = safeName(servername)
    const entry = name ? this.contexts.get(name) : undefined
    if (!entry || entry.expires < Date.now()) return undefined
    this.seen.get(name!)?.()
    return entry.context
  }

  /** Like contextFor(), falling back to storage when another instance runs the order. */
  async loadContext (servername: string): Promise<SecureContext | undefined> {
    const local = this.contextFor(servername)
    if (local) return local
    const name = safeName(servername)
    if (!name) return undefined
    const bytes = await this.storage.get(StorageKeys.tlsAlpn01(name)).catch(() => null)
    if (!bytes) {
      this.loaded.delete(name)
      return undefined
    }
    try {
      const entry = JSON.parse(Buffer.from(bytes).toString('utf8')) as StoredTlsAlpn
      if (entry.expires < Date.now()) return undefined
      const cached = this.loaded.get(name)
      if (cached?.keyAuthorization === entry.keyAuthorization) return cached.context
      const { context } = await createTlsAlpnChallenge(entry.identifier, entry.keyAuthorization)
      const now = Date.now()
      for (const [key, old] of this.loaded) if (old.expires < now) this.loaded.delete(key)
      this.loaded.set(name, { keyAuthorization: entry.keyAuthorization, context, expires: entry.expires })
      return context
    } catch (err) {
      this.logger.warn({ name, err: (err as Error).message }, 'unreadable TLS-ALPN-01 challenge in storage')
      return undefined
    }
  }
}

function safeName (servername: string): string | undefined {
  try {
    return normalizeName(servername)
  } catch {
    return undefined
  }
}
