import {
  CertificateManager, decodeKeySegment, DIRECTORY_URL_EXPECTED, encryptedStorage, ErrorCodes, isAcmeError, isEncryptedValue, findStoredBundle, isDirectoryUrl, issuerKeyOf, KEY_TYPES, maskUrl, parseEncryptionKeys, resolveDirectoryUrl, StorageKeys, storedAccountEmails,
  type CertificateBundle, type EabCredentials, type EncryptionKey, type KeyType, type Logger, type Storage,
} from '@fastify-acme/core'
import { storageFromUrl } from '@fastify-acme/storage-adapters'
import { readCaBundle } from '../env.js'
import { CliError, ExitCode, stringOption, usageError, type OptionValues } from './args.js'

/** The storage used when neither --storage nor ACME_STORAGE is given. */
export const DEFAULT_STORAGE_URL = 'file:./acme-data'

/** CA settings from flags, else the environment. */
export interface CaSettings {
  directoryUrl?: string
  email?: string
  caBundle?: string
  eab?: EabCredentials
  termsOfServiceAgreed?: boolean
}

/** Everything a command needs: its arguments, the settings, and where to write. */
export interface CliContext {
  args: string[]
  values: OptionValues
  json: boolean
  storageUrl: string
  /** ACME_STORAGE_KEYS: the storage is read and written through encryptedStorage() */
  storageKeys?: EncryptionKey[]
  ca: CaSettings
  env: Record<string, string | undefined>
  logger: Logger
  /** writes to stdout */
  out (text: string): void
  /** writes to stderr */
  err (text: string): void
  /** aborted on SIGINT or SIGTERM: work in flight stops and its locks are released */
  signal?: AbortSignal
}

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** aborted on SIGINT or SIGTERM */
  signal?: AbortSignal
}

export function createContext (args: string[], values: OptionValues, env: Record<string, string | undefined>, io: CliIo): CliContext {
  const eabKid = stringOption(values, 'eab-kid') ?? env.ACME_EAB_KID
  // the HMAC key is read from the environment only: a flag would show it in `ps` and shell history
  const eabHmacKey = env.ACME_EAB_HMAC_KEY
  if ((eabKid === undefined) !== (eabHmacKey === undefined)) throw usageError('External Account Binding needs both --eab-kid (or ACME_EAB_KID) and ACME_EAB_HMAC_KEY')
  const caBundleFlag = stringOption(values, 'ca-bundle')
  const caBundle = caBundleFlag ?? env.ACME_CA_BUNDLE
  const tos = values['agree-tos'] === true ? true : parseBoolean('ACME_TERMS_OF_SERVICE_AGREED', env.ACME_TERMS_OF_SERVICE_AGREED)
  const directoryUrl = stringOption(values, 'directory') ?? env.ACME_DIRECTORY_URL
  if (directoryUrl !== undefined && !isDirectoryUrl(resolveDirectoryUrl(directoryUrl))) {
    throw usageError(`${stringOption(values, 'directory') !== undefined ? '--directory' : 'ACME_DIRECTORY_URL'} must be ${DIRECTORY_URL_EXPECTED}, got ${JSON.stringify(directoryUrl)}`)
  }
  const email = stringOption(values, 'email') ?? env.ACME_EMAIL
  keyTypeOption({ values, env }) // before any storage is opened
  return {
    args,
    values,
    json: values.json === true,
    storageUrl: stringOption(values, 'storage') ?? env.ACME_STORAGE ?? DEFAULT_STORAGE_URL,
    // the keys are read from the environment only, as the HMAC key
    ...(env.ACME_STORAGE_KEYS ? { storageKeys: parseEncryptionKeys(env.ACME_STORAGE_KEYS) } : {}),
    ca: {
      ...(directoryUrl ? { directoryUrl } : {}),
      ...(email ? { email } : {}),
      ...(caBundle ? { caBundle: readCaBundle(caBundle, caBundleFlag !== undefined ? '--ca-bundle' : 'ACME_CA_BUNDLE') } : {}),
      ...(eabKid && eabHmacKey ? { eab: { kid: eabKid, hmacKey: eabHmacKey } } : {}),
      ...(tos !== undefined ? { termsOfServiceAgreed: tos } : {}),
    },
    env,
    logger: values.verbose === true ? stderrLogger(io.stderr) : { debug () {}, info () {}, warn: (o, m) => io.stderr(warningLine(o, m)), error () {} },
    out: io.stdout,
    err: io.stderr,
    ...(io.signal ? { signal: io.signal } : {}),
  }
}

/** Without --verbose, a warning is one line: its message, and the error it carries if any. */
function warningLine (obj: object | string, msg?: string): string {
  const err = typeof obj === 'object' ? (obj as { err?: unknown }).err : undefined
  return `warning: ${msg ?? (typeof obj === 'string' ? obj : '')}${typeof err === 'string' ? ` (${err})` : ''}\n`
}

/**
 * The storage of --storage / ACME_STORAGE / file:./acme-data, encrypted with ACME_STORAGE_KEYS
 * when set. Without `create` (commands that only read), a file: directory that does not exist is
 * an error, not an empty storage. Close it after use.
 */
export async function openStorage (ctx: CliContext, opts: { create?: boolean } = {}): Promise<Storage> {
  const storage = await storageFromUrl(ctx.storageUrl, { mustExist: opts.create !== true })
  return ctx.storageKeys ? encryptedStorage(storage, { keys: ctx.storageKeys }) : storage
}

/** The storage URL with any password masked, for output. */
export function shownStorageUrl (ctx: CliContext): string {
  return maskUrl(ctx.storageUrl)
}

/**
 * Refuses to write with a keyring the stored certificates were not written with: without
 * ACME_STORAGE_KEYS into an encrypted storage (the key would land in plaintext, where the apps,
 * which decrypt every value, could not read it), and with keys that cannot read what is stored
 * (a plaintext storage, or another keyring): the apps could not read the import either.
 */
export async function refuseOtherKeyring (ctx: CliContext, storage: Storage): Promise<void> {
  const keyring = ctx.storageKeys !== undefined
  for (const dir of (await storage.list(StorageKeys.certificatesPrefix)).slice(0, 3)) {
    let value: Uint8Array | null
    try {
      value = await storage.get(StorageKeys.certificateBundle(decodeKeySegment(dir.slice(StorageKeys.certificatesPrefix.length + 1))))
    } catch (err) {
      if (!keyring || !isAcmeError(err, ErrorCodes.STORAGE_CORRUPT)) throw err
      throw new CliError(`ACME_STORAGE_KEYS cannot read the certificates already in this storage (written with other keys, or without): ${(err as Error).message}`, ExitCode.USAGE, ErrorCodes.INVALID_OPTION)
    }
    if (value === null) continue
    if (!keyring && isEncryptedValue(value)) throw new CliError('the certificates in this storage are encrypted: set ACME_STORAGE_KEYS to the keys the apps use', ExitCode.USAGE, ErrorCodes.INVALID_OPTION)
    return
  }
}

/** Opens the storage, finds the certificate for `name` (exit 4 when none), runs `work`, closes the storage. */
export async function withStoredCertificate (
  ctx: CliContext, name: string, work: (storage: Storage, bundle: CertificateBundle) => Promise<number>
): Promise<number> {
  const storage = await openStorage(ctx)
  try {
    // an encrypted storage read without its keys would look empty (exit 4, "not found")
    await refuseOtherKeyring(ctx, storage)
    const bundle = await findStoredBundle(storage, name)
    if (!bundle) throw new CliError(`no stored certificate has the name ${name}`, ExitCode.NOT_FOUND, 'ERR_NOT_FOUND')
    return await work(storage, bundle)
  } finally {
    await storage.close?.()
  }
}

/**
 * A CertificateManager for one stored certificate: its CA from the flags or environment,
 * else the one that issued it; its account email from the flags or environment, else the one
 * account stored for that CA; HTTP-01 only (tokens go to storage, so a running app that shares
 * it answers them, or the CLI's own --http-port listener does).
 */
export async function managerFor (ctx: CliContext, storage: Storage, bundle: CertificateBundle): Promise<CertificateManager> {
  const configured = ctx.ca.directoryUrl
  const directoryUrl = configured ?? (bundle.issuer.directoryUrl === 'imported' ? undefined : bundle.issuer.directoryUrl)
  if (!directoryUrl) throw usageError(`the certificate for ${bundle.names[0]} was imported; pass --directory (or set ACME_DIRECTORY_URL) to name its CA`)
  const resolved = resolveDirectoryUrl(directoryUrl)
  let email = ctx.ca.email
  if (email === undefined && resolved !== 'local') {
    const emails = await storedAccountEmails(storage, issuerKeyOf(resolved))
    if (emails.length === 1) email = emails[0]
    else if (emails.length > 1) throw usageError(`several accounts are stored for ${resolved}: pass --email (one of ${emails.map((e) => e ?? '(none)').join(', ')})`)
  }
  const keyType = keyTypeOption(ctx) ?? bundle.keyType
  return new CertificateManager({
    ...ctx.ca,
    directoryUrl: resolved,
    ...(email ? { email } : {}),
    keyType: keyType as KeyType,
    storage,
    challenges: { http01: true },
    logger: ctx.logger,
  })
}

/** --key-type, else ACME_KEY_TYPE (as the apps read it), checked; undefined when neither is set. */
function keyTypeOption (ctx: Pick<CliContext, 'values' | 'env'>): KeyType | undefined {
  const flag = stringOption(ctx.values, 'key-type')
  const keyType = flag ?? ctx.env.ACME_KEY_TYPE
  if (keyType !== undefined && !KEY_TYPES.includes(keyType as KeyType)) {
    throw usageError(`${flag !== undefined ? '--key-type' : 'ACME_KEY_TYPE'} must be one of ${KEY_TYPES.join(', ')}, got "${keyType}"`)
  }
  return keyType as KeyType | undefined
}

function parseBoolean (name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined
  if (['true', '1', 'yes'].includes(value.toLowerCase())) return true
  if (['false', '0', 'no'].includes(value.toLowerCase())) return false
  throw usageError(`${name} must be true or false, got "${value}"`)
}

/** JSON lines on stderr: what the manager logs (it never logs a key or the EAB HMAC key). */
function stderrLogger (write: (text: string) => void): Logger {
  const line = (level: string) => (obj: object | string, msg?: string) => {
    const fields = typeof obj === 'string' ? { msg: obj } : { ...obj, msg }
    write(`${JSON.stringify({ level, time: new Date().toISOString(), ...fields })}\n`)
  }
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') }
}
