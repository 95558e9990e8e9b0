/**
 * The storage contract. Every adapter (fs, Redis, S3, yours) implements it, and the suite in
 * @fastify-acme/storage-adapters/testing proves each sentence below against the adapter.
 *
 * Instances that share one storage form one cluster: they share accounts, certificates and
 * challenge responses, and coordinate through its locks. There is no other coordination.
 *
 * Keys:
 * - A key is a `/`-separated path of non-empty segments made of `[A-Za-z0-9._~@+=-]`, with no
 *   segment `.` or `..`, at most 1024 characters. Core builds every key (see `StorageKeys`), so
 *   adapters never build keys; they must refuse any other key with ERR_ACME_STORAGE_KEY rather
 *   than map it somewhere unexpected.
 * - Keys have file-system semantics: `a/b` is a value "inside" the directory `a`.
 *   A key is never both a value and a directory.
 */
export interface Storage {
  /**
   * Returns the value stored at `key`, or null when there is none.
   * After `put(key, v)` resolves, every later `get(key)` from any instance returns `v`
   * (read-after-write) until the next put or delete.
   */
  get (key: string): Promise<Uint8Array | null>

  /**
   * Stores `value` at `key`, replacing any value. Puts are atomic: a concurrent or later reader
   * sees either the old value or the new one in full, never a mix or a truncation, even when the
   * writer dies mid-write. A string is stored as its UTF-8 bytes.
   */
  put (key: string, value: Uint8Array | string): Promise<void>

  /**
   * Deletes the value at `key` and every value under the directory `key/`. Deleting what does
   * not exist succeeds.
   */
  delete (key: string): Promise<void>

  /**
   * Lists the keys directly under the directory `prefix` (or at any depth when `recursive`),
   * as full keys, sorted. Non-recursive listings include sub-directories as their key (no
   * trailing slash). A missing directory lists as []. Temporary files never appear.
   */
  list (prefix: string, opts?: { recursive?: boolean }): Promise<string[]>

  /**
   * Size and modification time of the value at `key`; `{ isFile: false }` for a directory;
   * null when neither exists.
   */
  stat (key: string): Promise<StorageStat | null>

  /**
   * Acquires the named lock, waiting while another holder has it. Resolves with a handle once
   * held. Across every instance sharing the storage, at most one handle per name is held at a
   * time, as long as holders renew within the TTL.
   *
   * A lock whose holder stopped renewing (crashed, killed, stalled) becomes free `ttlMs` after
   * its last renewal, and not before; exactly one waiter then takes it over.
   * Rejects with ERR_ACME_ABORTED when `signal` aborts while waiting, leaving no lock behind.
   */
  lock (name: string, opts?: LockOptions): Promise<LockHandle>

  /** Like lock(), but resolves null at once instead of waiting when the lock is held. */
  tryLock (name: string, opts?: Omit<LockOptions, 'signal'>): Promise<LockHandle | null>

  /**
   * Optional: calls `onChange(key)` soon after any instance puts or deletes a key under
   * `prefix`. Backends with a change feed (Redis pub/sub) offer it; others are polled.
   * Returns a function that stops the subscription.
   */
  watch? (prefix: string, onChange: (key: string) => void): Promise<() => Promise<void>>

  /**
   * Releases what the adapter opened (never a client it was handed). Held locks are released,
   * also one whose acquisition was in flight; lock attempts after it fail with ERR_ACME_CLOSED.
   */
  close? (): Promise<void>
}

export interface StorageStat {
  size: number
  modified: Date
  isFile: boolean
}

export interface LockOptions {
  /**
   * Lease length in ms (default 30 000). The handle renews it every ttlMs/3 by itself; a holder
   * that cannot renew for ttlMs loses the lock and its `lost` signal fires.
   */
  ttlMs?: number
  /** aborts the wait */
  signal?: AbortSignal
}

/** A held lock. */
export interface LockHandle {
  readonly name: string
  /** unique per acquisition; proves ownership to the backend */
  readonly token: string
  /**
   * Fencing number: strictly greater than every fence handed out before for this name,
   * across acquisitions, takeovers and restarts of a persistent backend.
   */
  readonly fence: number
  /**
   * Fires when the lock is known to be gone, or may be: a renewal found another owner, or no
   * renewal succeeded for ttlMs. Work done under the lock should stop when it fires.
   */
  readonly lost: AbortSignal
  /** Extends the lease now. Rejects with ERR_ACME_LOCK_LOST (and fires `lost`) if it is gone. */
  renew (): Promise<void>
  /**
   * Releases the lock and stops renewing. Never frees a lock someone else holds: after a
   * takeover, or when called twice, it does nothing.
   */
  release (): Promise<void>
}
