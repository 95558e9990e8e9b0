import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import type { Logger } from '../logger.js'
import { generatePrivateKey } from '../keys.js'
import type { Storage } from '../storage/contract.js'
import { LockNames, StorageKeys } from '../storage/keys.js'
import { createClient, type InternalClient } from './client.js'
import type { Transport } from './transport.js'

/** An ACME account as stored: its key and URL at one CA. */
export interface StoredAccount {
  version: 1
  directoryUrl: string
  email?: string
  /** PEM PKCS#8 */
  accountKey: string
  accountUrl: string
  createdAt: string
}

/** External Account Binding credentials from the CA (ZeroSSL, Google, private CAs). */
export interface EabCredentials {
  kid: string
  /** base64url HMAC key */
  hmacKey: string
}

export interface AccountContext {
  storage: Storage
  issuerKey: string
  directoryUrl: string
  email?: string
  termsOfServiceAgreed?: boolean
  eab?: EabCredentials
  transport: Transport
  logger: Logger
  /** the CA's directory (fetched once, then cached by the issuer) */
  directory: () => Promise<Record<string, any>>
  /** the same directory when already fetched, so short-lived clients skip the GET */
  cachedDirectory?: () => Record<string, any> | undefined
  signal?: AbortSignal
}

/**
 * Loads the account for this CA and email, or registers one. Registration runs under a storage
 * lock and re-reads storage first, so a cluster registers exactly one account.
 */
export async function loadOrCreateAccount (ctx: AccountContext): Promise<StoredAccount> {
  const key = StorageKeys.account(ctx.issuerKey, ctx.email)
  const existing = await readAccount(ctx.storage, key)
  if (existing) return existing
  const lock = await ctx.storage.lock(LockNames.account(ctx.issuerKey, ctx.email), { signal: ctx.signal })
  try {
    return await readAccount(ctx.storage, key) ?? await register(ctx, key)
  } finally {
    await lock.release()
  }
}

/**
 * Registers a new account, replacing the stored one: used once when the CA says the stored
 * account no longer exists (accountDoesNotExist).
 */
export async function replaceAccount (ctx: AccountContext, stale: StoredAccount): Promise<StoredAccount> {
  const key = StorageKeys.account(ctx.issuerKey, ctx.email)
  const lock = await ctx.storage.lock(LockNames.account(ctx.issuerKey, ctx.email), { signal: ctx.signal })
  try {
    const current = await readAccount(ctx.storage, key)
    if (current && current.accountUrl !== stale.accountUrl) return current // another instance did it
    ctx.logger.warn({ account: stale.accountUrl }, 'the CA no longer knows the stored account; registering a new one')
    return await register(ctx, key)
  } finally {
    await lock.release()
  }
}

async function register (ctx: AccountContext, storageKey: string): Promise<StoredAccount> {
  const directory = await ctx.directory()
  if (directory.meta?.termsOfService && ctx.termsOfServiceAgreed !== true) {
    throw new AcmeError(ErrorCodes.TOS_NOT_AGREED,
      `the CA at ${ctx.directoryUrl} requires agreeing to its terms of service (${directory.meta.termsOfService}): set termsOfServiceAgreed: true`)
  }
  if (directory.meta?.externalAccountRequired && !ctx.eab) {
    throw new AcmeError(ErrorCodes.EAB_REQUIRED, `the CA at ${ctx.directoryUrl} requires External Account Binding: set eab: { kid, hmacKey }`)
  }
  const accountKey = await generatePrivateKey('ec-p256')
  const client = clientFor(ctx, accountKey)
  try {
    await client.createAccount({
      termsOfServiceAgreed: ctx.termsOfServiceAgreed === true,
      ...(ctx.email ? { contact: [`mailto:${ctx.email}`] } : {}),
    })
  } catch (err) {
    if (isAcmeError(err) && /externalAccount|unauthorized/.test(err.problemType ?? '') && ctx.eab) {
      throw new AcmeError(ErrorCodes.EAB_REQUIRED, `the CA refused the External Account Binding (kid ${ctx.eab.kid}): ${err.message}`, { cause: err })
    }
    throw isAcmeError(err) ? err : new AcmeError(ErrorCodes.ACCOUNT, `account registration failed: ${(err as Error).message}`, { cause: err })
  }
  const account: StoredAccount = {
    version: 1,
    directoryUrl: ctx.directoryUrl,
    ...(ctx.email ? { email: ctx.email } : {}),
    accountKey,
    accountUrl: client.getAccountUrl(),
    createdAt: new Date().toISOString(),
  }
  await ctx.storage.put(storageKey, JSON.stringify(account))
  ctx.logger.info({ account: account.accountUrl, directoryUrl: ctx.directoryUrl }, 'ACME account registered')
  return account
}

/**
 * RFC 8555 §7.3.5 key rollover: the CA switches the account to a new key, then storage does,
 * under the account lock (two instances rolling at once would each store their own key).
 * When keyChange fails, the CA may still have switched (its answer lost, or a retry signed with
 * the old key refused): the new key is then asked for the account, and kept if the CA knows it.
 * (acme-client's updateAccountKey builds its clients on the process-global axios, so the
 * inner JWS is built here with our transport.)
 */
export async function rolloverAccountKey (ctx: AccountContext, account: StoredAccount): Promise<StoredAccount> {
  const storageKey = StorageKeys.account(ctx.issuerKey, ctx.email)
  const lock = await ctx.storage.lock(LockNames.account(ctx.issuerKey, ctx.email), { signal: ctx.signal })
  try {
    const current = await readAccount(ctx.storage, storageKey) ?? account
    const newKey = await generatePrivateKey('ec-p256')
    const client = clientFor(ctx, current.accountKey, current.accountUrl)
    const next = clientFor(ctx, newKey, current.accountUrl)
    const url = await next.http.getResourceUrl('keyChange')
    const inner = (next.http as unknown as { createSignedBody (url: string, payload: unknown): unknown })
      .createSignedBody(url, { account: current.accountUrl, oldKey: (client.http as unknown as { getJwk (): unknown }).getJwk() })
    try {
      await client.api.apiRequest(url, inner, [200])
    } catch (err) {
      if (isAcmeError(err, ErrorCodes.ABORTED) || !await next.api.apiRequest(current.accountUrl, null, [200]).then(() => true, () => false)) throw err
      ctx.logger.warn({ account: current.accountUrl, err: (err as Error).message }, 'keyChange failed, but the CA knows the new key: keeping it')
    }
    const rolled = { ...current, accountKey: newKey }
    await ctx.storage.put(storageKey, JSON.stringify(rolled))
    return rolled
  } finally {
    await lock.release()
  }
}

/** A short-lived acme-client Client for one operation (its signal aborts every request). */
export function clientFor (ctx: AccountContext, accountKey: string, accountUrl?: string, signal?: AbortSignal): InternalClient {
  return createClient({
    directoryUrl: ctx.directoryUrl,
    accountKey,
    accountUrl,
    eab: ctx.eab,
    transport: ctx.transport,
    logger: ctx.logger,
    signal: signal ?? ctx.signal,
    directory: ctx.cachedDirectory?.(),
  })
}

async function readAccount (storage: Storage, key: string): Promise<StoredAccount | null> {
  const bytes = await storage.get(key)
  if (!bytes) return null
  try {
    const account = JSON.parse(Buffer.from(bytes).toString('utf8')) as StoredAccount
    if (typeof account.accountKey !== 'string' || typeof account.accountUrl !== 'string') throw new Error('missing accountKey or accountUrl')
    return account
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `the stored ACME account at ${key} is unreadable; delete it to register a new account`, { cause })
  }
}
