import {
  CertificateManager, encryptedStorage, findStoredBundle, issuerKeyOf, KEY_TYPES, maskUrl, parseEncryptionKeys, resolveDirectoryUrl, storedAccountEmails,
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
}

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
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
  if (directoryUrl !== undefined && resolveDirectoryUrl(directoryUrl) !== 'local' && !URL.canParse(resolveDirectoryUrl(directoryUrl))) {
    throw usageError(`--directory (or ACME_DIRECTORY_URL) must be letsencrypt, letsencrypt-staging, zerossl, google, google-staging, local or a directory URL, got ${JSON.stringify(directoryUrl)}`)
  }
  const email = stringOption(values, 'email') ?? env.ACME_EMAIL
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

/** Opens the storage, finds the certificate for `name` (exit 4 when none), runs `work`, closes the storage. */
export async function withStoredCertificate (
  ctx: CliContext, name: string, work: (storage: Storage, bundle: CertificateBundle) => Promise<number>
): Promise<number> {
  const storage = await openStorage(ctx)
  try {
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
  const keyType = stringOption(ctx.values, 'key-type') ?? ctx.env.ACME_KEY_TYPE ?? bundle.keyType
  if (!KEY_TYPES.includes(keyType as KeyType)) throw usageError(`--key-type must be one of ${KEY_TYPES.join(', ')}, got "${keyType}"`)
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
