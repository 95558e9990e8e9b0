import {
  AcmeError, certIdOf, ErrorCodes, isAcmeError, issuerKeyOf, LockNames, normalizeName, readLeaf, readStoredCertificates, resolveDirectoryUrl, splitPemChain, StorageKeys, verifyBundle,
  type CertificateBundle, type KeyType, type Storage,
} from '@fastify-acme/core'
import { createPrivateKey } from 'node:crypto'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { CliError, ExitCode, nameArgument, stringOption, usageError } from '../args.js'
import { openStorage, refuseOtherKeyring, withStoredCertificate, type CliContext } from '../context.js'
import { printJson, shortTime } from '../output.js'

/** `import <name> --cert fullchain.pem --key privkey.pem [--chain chain.pem] [--force]` */
export async function importCommand (ctx: CliContext): Promise<number> {
  const name = normalizeName(nameArgument('import', ctx.args))
  const certFile = stringOption(ctx.values, 'cert')
  const keyFile = stringOption(ctx.values, 'key')
  if (!certFile || !keyFile) throw usageError('import needs --cert <chain.pem> and --key <key.pem>')
  const chainFile = stringOption(ctx.values, 'chain')
  const certPem = await readPem(certFile) + (chainFile ? await readPem(chainFile) : '')
  const bundle = bundleFromPem(ctx, name, { pem: certPem, file: chainFile ? `${certFile} + ${chainFile}` : certFile }, { pem: await readPem(keyFile), file: keyFile })

  const storage = await openStorage(ctx, { create: true })
  try {
    await refuseOtherKeyring(ctx, storage)
    // under the issuance lock, so no instance renews this certificate while it is replaced
    const lock = await lockSaying(ctx, storage, name)
    try {
      if (ctx.values.force !== true && await storage.get(StorageKeys.certificateBundle(name))) {
        throw new CliError(`a certificate for ${name} is already stored; pass --force to replace it`, ExitCode.FAILURE, 'ERR_EXISTS')
      }
      if (ctx.values.force !== true) {
        // a second certificate for names another one covers: the command line would find either
        const other = (await readStoredCertificates(storage)).find((c) => c.primary !== name && c.names.some((n) => bundle.names.includes(n)))
        if (other) {
          const shared = other.names.filter((n) => bundle.names.includes(n)).join(', ')
          throw new CliError(`the stored certificate ${other.primary} already covers ${shared}; import under ${other.primary} (with --force) to replace it, or pass --force to store a second one`, ExitCode.FAILURE, 'ERR_EXISTS')
        }
      }
      await storage.put(StorageKeys.certificateBundle(name), JSON.stringify(bundle))
      await storage.delete(StorageKeys.certificateState(name))
    } finally {
      await lock.release().catch(() => {})
    }
  } finally {
    await storage.close?.()
  }
  const summary = { name, names: bundle.names, serial: bundle.serial, notAfter: bundle.notAfter, issuer: bundle.issuer }
  if (ctx.json) printJson(ctx, { ok: true, imported: summary })
  else ctx.out(`Imported ${bundle.names.join(', ')} (serial ${bundle.serial}, valid until ${shortTime(new Date(bundle.notAfter))} UTC, issuer ${bundle.issuer.commonName}).\n`)
  return ExitCode.OK
}

/** `export <name> [--out dir] [--include-key] [--force]` */
export async function exportCommand (ctx: CliContext): Promise<number> {
  const name = nameArgument('export', ctx.args)
  const out = stringOption(ctx.values, 'out')
  return withStoredCertificate(ctx, name, async (_storage, bundle) => {
    const [leaf = '', ...chain] = splitPemChain(bundle.certificate)
    const fullchain = [leaf, ...chain].join('')
    const summary = { name: bundle.names[0], names: bundle.names, serial: bundle.serial, notAfter: bundle.notAfter }
    if (out) {
      const files = {
        fullchain: path.resolve(out, 'fullchain.pem'),
        cert: path.resolve(out, 'cert.pem'),
        chain: path.resolve(out, 'chain.pem'),
        privkey: path.resolve(out, 'privkey.pem'),
      }
      if ((await stat(out).catch(() => null))?.isDirectory() === false) throw usageError(`--out must be a directory, and ${path.resolve(out)} is a file`)
      if (ctx.values.force !== true) {
        for (const file of Object.values(files)) {
          if (await stat(file).then(() => true, () => false)) throw new CliError(`${file} exists; pass --force to overwrite it`, ExitCode.FAILURE, 'ERR_EXISTS')
        }
      }
      await mkdir(path.resolve(out), { recursive: true, mode: 0o700 })
      for (const [file, text] of [[files.fullchain, fullchain], [files.cert, leaf], [files.chain, chain.join('')], [files.privkey, bundle.privateKey]] as const) {
        // 0600 before anything is written: writeFile keeps the mode of a file that existed (--force)
        await writeFile(file, '', { mode: 0o600 })
        await chmod(file, 0o600)
        await writeFile(file, text)
      }
      if (ctx.json) printJson(ctx, { ok: true, ...summary, files })
      else ctx.out(`Exported ${bundle.names[0]} (serial ${bundle.serial}) to ${path.resolve(out)}: fullchain.pem, cert.pem, chain.pem, privkey.pem (mode 0600).\n`)
      return ExitCode.OK
    }
    const includeKey = ctx.values['include-key'] === true
    if (ctx.json) printJson(ctx, { ok: true, ...summary, certificate: fullchain, ...(includeKey ? { privateKey: bundle.privateKey } : {}) })
    else ctx.out(fullchain + (includeKey ? bundle.privateKey : ''))
    return ExitCode.OK
  })
}

async function readPem (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.FAILURE, 'ERR_FILE')
  }
}

/**
 * A storage bundle from PEM files: names from the certificate (the given name first), the key
 * as PKCS#8, the issuer from --directory when given (so ARI and `replaces` work), else 'imported'.
 */
function bundleFromPem (ctx: CliContext, name: string, cert: { pem: string, file: string }, keyFile: { pem: string, file: string }): CertificateBundle {
  // (--cert fullchain.pem with --chain chain.pem names the intermediates twice)
  const chain = [...new Set(splitPemChain(cert.pem))]
  if (chain.length === 0) throw new CliError(`the --cert file ${cert.file} holds no PEM certificate`, ExitCode.FAILURE, ErrorCodes.STORAGE_CORRUPT)
  const certificate = chain.join('')
  const leaf = readLeaf(certificate)
  if (!leaf.names.includes(name)) throw new CliError(`the certificate does not cover ${name} (it covers ${leaf.names.join(', ') || 'no name'})`, ExitCode.FAILURE, 'ERR_NAME_MISMATCH')
  if (leaf.notAfter.getTime() <= Date.now()) throw new CliError(`the certificate expired on ${leaf.notAfter.toISOString()}`, ExitCode.FAILURE, 'ERR_EXPIRED')
  let key
  if (keyFile.pem.includes('ENCRYPTED PRIVATE KEY') || keyFile.pem.includes('Proc-Type: 4,ENCRYPTED')) {
    throw new CliError(`the --key file ${keyFile.file} is encrypted: decrypt it first (openssl pkey -in ${keyFile.file} -out key.pem)`, ExitCode.FAILURE, ErrorCodes.STORAGE_CORRUPT)
  }
  try {
    key = createPrivateKey(keyFile.pem)
  } catch (cause) {
    throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `the --key file ${keyFile.file} holds no readable PEM private key`, { cause })
  }
  const directoryUrl = ctx.ca.directoryUrl ? resolveDirectoryUrl(ctx.ca.directoryUrl) : undefined
  let certId: string | null = null
  try { certId = certIdOf(certificate) } catch {}
  const bundle: CertificateBundle = {
    version: 1,
    names: [name, ...leaf.names.filter((n) => n !== name)],
    certificate,
    privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keyType: keyTypeOf(key),
    issuer: {
      key: directoryUrl ? (directoryUrl === 'local' ? 'local' : issuerKeyOf(directoryUrl)) : 'imported',
      directoryUrl: directoryUrl ?? 'imported',
      commonName: leaf.issuerCommonName,
    },
    serial: leaf.serial,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    certId,
    obtainedAt: new Date().toISOString(),
  }
  try {
    verifyBundle(bundle)
  } catch {
    throw new CliError('the --key private key does not belong to the --cert certificate', ExitCode.FAILURE, 'ERR_KEY_MISMATCH')
  }
  return bundle
}

function keyTypeOf (key: ReturnType<typeof createPrivateKey>): KeyType {
  const details = key.asymmetricKeyDetails
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return 'ec-p256'
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'secp384r1') return 'ec-p384'
  if (key.asymmetricKeyType === 'rsa' && details?.modulusLength === 2048) return 'rsa-2048'
  if (key.asymmetricKeyType === 'rsa' && details?.modulusLength === 4096) return 'rsa-4096'
  throw new CliError(`unsupported key: ${key.asymmetricKeyType} ${details?.namedCurve ?? details?.modulusLength ?? ''} (use EC P-256/P-384 or RSA 2048/4096)`, ExitCode.FAILURE, 'ERR_KEY_TYPE')
}

/** LOCK_WAIT_MS at most for the certificate's issuance lock, saying so after a second (an app is ordering it). */
const LOCK_WAIT_MS = 120_000

async function lockSaying (ctx: CliContext, storage: Storage, name: string) {
  const notice = setTimeout(() => ctx.err(`waiting for the lock on ${name}: an instance is ordering this certificate (up to ${LOCK_WAIT_MS / 1000} s)...\n`), 1000)
  try {
    const timeout = AbortSignal.timeout(LOCK_WAIT_MS)
    return await storage.lock(LockNames.issue(name), { ttlMs: 30_000, signal: ctx.signal ? AbortSignal.any([timeout, ctx.signal]) : timeout })
  } catch (err) {
    if (ctx.signal?.aborted) throw ctx.signal.reason
    if (isAcmeError(err, ErrorCodes.ABORTED) || (err as Error).name === 'TimeoutError') {
      throw new CliError(`the lock on ${name} stayed held for ${LOCK_WAIT_MS / 1000} s; try again when the instance holding it is done`, ExitCode.FAILURE, ErrorCodes.TIMEOUT)
    }
    throw err
  } finally {
    clearTimeout(notice)
  }
}
