import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import type { LockHandle, Storage } from '../storage/contract.js'
import { LockNames, StorageKeys } from '../storage/keys.js'
import { createCa, readCa, signedBy } from './certs.js'
import type { CaMaterial, CaSpec } from './certs.js'

export interface AuthorityOptions {
  rootLifetimeMs: number
  intermediateLifetimeMs: number
  leafLifetimeMs: number
  commonNamePrefix: string
}

/** The local CA's root and current intermediate, kept in storage and shared by every instance using it. */
export interface LocalAuthority {
  root (): Promise<CaMaterial>
  /** the intermediate to sign leaves with, re-issued from the root when it nears expiry */
  intermediate (): Promise<CaMaterial>
}

type Which = 'root' | 'intermediate'

export function localAuthority (storage: Storage, opts: AuthorityOptions): LocalAuthority {
  // Rotate with a third of the lifetime left, and early enough that a leaf never outlives it.
  const rotateBeforeMs = Math.max(opts.intermediateLifetimeMs / 3, opts.leafLifetimeMs)
  // how soon a root replaced in storage (a rotation, by deleting the old one) is noticed here
  const recheckMs = Math.min(60_000, opts.leafLifetimeMs / 4)
  let root: Promise<CaMaterial> | undefined
  let current: CaMaterial | undefined
  let checkedAt = 0
  let refreshing: Promise<CaMaterial> | undefined

  const load = async (which: Which): Promise<CaMaterial | null> => {
    const bytes = await storage.get(StorageKeys.localCa(which))
    if (!bytes) return null
    let stored: { certificate?: unknown, privateKey?: unknown }
    try {
      stored = JSON.parse(Buffer.from(bytes).toString('utf8'))
    } catch (cause) {
      throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `stored local CA ${which} is not JSON`, { cause })
    }
    return readCa(stored ?? {}, which)
  }

  const create = async (which: Which, spec: CaSpec, lock: LockHandle): Promise<CaMaterial> => {
    const ca = await createCa(spec)
    if (lock.lost.aborted) throw lock.lost.reason
    await storage.put(StorageKeys.localCa(which), JSON.stringify({ version: 1, certificate: ca.certificate, privateKey: ca.privateKey }))
    return ca
  }

  // Cluster rule: take the lock, look again (another instance may have just written it), then create.
  const underLock = async <T>(work: (lock: LockHandle) => Promise<T>): Promise<T> => {
    const lock = await storage.lock(LockNames.localCa)
    try {
      return await work(lock)
    } finally {
      await lock.release()
    }
  }

  const loadOrCreateRoot = async (): Promise<CaMaterial> => {
    // A corrupt root is an error, never silently replaced: browsers and clients trust it.
    return await load('root') ?? underLock(async (lock) => await load('root') ?? create('root', {
      commonName: `${opts.commonNamePrefix} - ${new Date().getUTCFullYear()} ECC Root`,
      lifetimeMs: opts.rootLifetimeMs,
    }, lock))
  }

  const getRoot = (): Promise<CaMaterial> => {
    root ??= loadOrCreateRoot().catch((err) => { root = undefined; throw err })
    return root
  }

  /**
   * The root as stored now. One replaced in storage replaces the one held here, so that no
   * instance goes on signing intermediates (or overwriting the stored one) with the old root.
   */
  const storedRoot = async (): Promise<CaMaterial> => {
    const stored = await load('root')
    if (!stored) {
      root = undefined
      return getRoot()
    }
    root = Promise.resolve(stored)
    return stored
  }

  const usable = async (ca: CaMaterial, rootCa: CaMaterial): Promise<boolean> =>
    ca.notAfter - Date.now() > rotateBeforeMs && await signedBy(ca, rootCa)

  const loadIntermediate = async (): Promise<CaMaterial | null> => {
    try {
      return await load('intermediate')
    } catch (err) {
      // an unreadable intermediate is simply re-issued from the root; nothing is lost
      if (isAcmeError(err, ErrorCodes.STORAGE_CORRUPT)) return null
      throw err
    }
  }

  const refresh = async (): Promise<CaMaterial> => {
    const rootCa = await storedRoot()
    if (rootCa.notAfter - Date.now() <= rotateBeforeMs) {
      throw new AcmeError(ErrorCodes.CA_PROBLEM, `the local CA root expires ${new Date(rootCa.notAfter).toISOString()}; ` +
        `delete ${StorageKeys.localCa('root')} from storage to create a new root, then trust the new one`)
    }
    let ca = await loadIntermediate()
    if (!ca || !await usable(ca, rootCa)) {
      ca = await underLock(async (lock) => {
        if ((await load('root'))?.certificate !== rootCa.certificate) throw new AcmeError(ErrorCodes.CA_PROBLEM, 'the local CA root changed in storage meanwhile; try again', { retryable: true })
        const again = await loadIntermediate()
        if (again && await usable(again, rootCa)) return again
        return create('intermediate', {
          commonName: `${opts.commonNamePrefix} - ECC Intermediate`,
          lifetimeMs: opts.intermediateLifetimeMs,
          parent: rootCa,
        }, lock)
      })
    }
    current = ca
    checkedAt = Date.now()
    return ca
  }

  return {
    root: getRoot,
    async intermediate () {
      if (current && current.notAfter - Date.now() > rotateBeforeMs && Date.now() - checkedAt < recheckMs) return current
      refreshing ??= refresh().finally(() => { refreshing = undefined })
      return refreshing
    },
  }
}
