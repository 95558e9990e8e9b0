import { type CertificateBundle, verifyBundle } from '../certificate.js'
import { AcmeError, ErrorCodes } from '../errors.js'
import { parseRenewalState, type RenewalState } from '../renewal/index.js'
import type { Storage } from '../storage/contract.js'
import { isEncryptedValue } from '../storage/encryption.js'
import { StorageKeys, decodeKeySegment } from '../storage/keys.js'

/** After a failed storage check, the next attempt comes this much later. */
const STORAGE_RETRY_MS = 30_000

/** Reads and writes certificate bundles and their failure state; every read is verified. */
export class BundleStore {
  constructor (private readonly storage: Storage) {}

  /**
   * The stored bundle for `primary`, or null. Throws ERR_ACME_STORAGE_CORRUPT when the bytes are
   * unreadable or the key does not match the certificate, so that nothing broken is served.
   */
  async read (primary: string): Promise<CertificateBundle | null> {
    const bytes = await this.storage.get(StorageKeys.certificateBundle(primary))
    if (!bytes) return null
    let bundle: CertificateBundle
    try {
      bundle = JSON.parse(Buffer.from(bytes).toString('utf8')) as CertificateBundle
    } catch (cause) {
      // read without the keyring it was written with
      if (isEncryptedValue(bytes)) throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `the stored certificate for ${primary} is encrypted: read it through encryptedStorage() with its keys (ACME_STORAGE_KEYS)`, { cause })
      throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `the stored certificate for ${primary} is not valid JSON`, { cause })
    }
    if (bundle?.version !== 1 || !Array.isArray(bundle.names) || typeof bundle.certificate !== 'string' || typeof bundle.privateKey !== 'string') {
      throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `the stored certificate for ${primary} is not a certificate bundle`)
    }
    verifyBundle(bundle)
    return bundle
  }

  /**
   * Copies the stored bundle's bytes to StorageKeys.certificateUnreadable before an order
   * replaces it, and returns that key. Throws (ERR_ACME_STORAGE_CORRUPT from an encrypting
   * storage) when the bytes cannot even be read back: then nothing may overwrite them.
   */
  async keepUnreadable (primary: string): Promise<string | null> {
    const bytes = await this.storage.get(StorageKeys.certificateBundle(primary))
    if (!bytes) return null
    const key = StorageKeys.certificateUnreadable(primary, Date.now())
    await this.storage.put(key, bytes)
    return key
  }

  async write (bundle: CertificateBundle): Promise<void> {
    await this.storage.put(StorageKeys.certificateBundle(bundle.names[0]!), JSON.stringify(bundle))
  }

  async readState (primary: string): Promise<RenewalState | null> {
    return (await this.readStateEntry(primary)).state
  }

  /** The failure state, and whether anything is stored for it (a broken record reads as null). */
  async readStateEntry (primary: string): Promise<{ state: RenewalState | null, stored: boolean }> {
    const bytes = await this.storage.get(StorageKeys.certificateState(primary))
    if (!bytes) return { state: null, stored: false }
    try {
      return { state: parseRenewalState(bytes), stored: true }
    } catch {
      return { state: null, stored: true } // a broken failure record only loses backoff history; never block renewals on it
    }
  }

  async writeState (primary: string, state: RenewalState | null): Promise<void> {
    const key = StorageKeys.certificateState(primary)
    if (state) await this.storage.put(key, JSON.stringify(state))
    else await this.storage.delete(key)
  }

  async delete (primary: string): Promise<void> {
    await this.storage.delete(StorageKeys.certificateDir(primary))
  }

  /** Primary names of every certificate in storage (from their directory keys). */
  async listPrimaries (): Promise<string[]> {
    const dirs = await this.storage.list(StorageKeys.certificatesPrefix)
    return dirs.map((key) => decodeKeySegment(key.slice(StorageKeys.certificatesPrefix.length + 1)))
  }

  /**
   * The write/read/delete check run before every order (CertMagic does the same): a storage
   * that cannot keep a certificate must not cause an order, or the CA's rate limits burn.
   */
  async check (): Promise<void> {
    const key = StorageKeys.healthCheck(`${process.pid}-${Math.random().toString(36).slice(2)}`)
    const value = `check ${Date.now()}`
    try {
      await this.storage.put(key, value)
      const read = await this.storage.get(key)
      if (!read || Buffer.from(read).toString('utf8') !== value) throw new Error('read back a different value')
      await this.storage.delete(key)
    } catch (cause) {
      // retryAfter plans the next attempt (the scheduler wakes for it): without it, a certificate
      // first asked for while storage is down would wait for the next 10-minute check
      throw new AcmeError(ErrorCodes.STORAGE, `storage check failed, so no order is placed: ${(cause as Error).message}`, {
        cause, retryable: true, retryAfter: new Date(Date.now() + STORAGE_RETRY_MS),
      })
    }
  }
}
