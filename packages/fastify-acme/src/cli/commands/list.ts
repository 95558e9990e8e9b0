import { readStoredCertificates, type StoredCertificate } from '@fastify-acme/core'
import { ExitCode, usageError } from '../args.js'
import { openStorage, shownStorageUrl, type CliContext } from '../context.js'
import { daysLeft, printJson, shortTime, table, truncate } from '../output.js'

/** `list`: every certificate in storage, with expiry, next renewal and why, and the last error. */
export async function listCommand (ctx: CliContext): Promise<number> {
  if (ctx.args.length > 0) throw usageError('list takes no argument (it lists every stored certificate)')
  const storage = await openStorage(ctx)
  try {
    const certificates = await readStoredCertificates(storage)
    const now = new Date()
    if (ctx.json) {
      printJson(ctx, { ok: true, storage: shownStorageUrl(ctx), certificates: certificates.map((c) => toJson(c, now)) })
      return ExitCode.OK
    }
    if (certificates.length === 0) {
      ctx.out(`No certificate is stored in ${shownStorageUrl(ctx)}.\n`)
      return ExitCode.OK
    }
    ctx.out(table(
      ['NAME', 'ISSUER', 'NOT AFTER (UTC)', 'DAYS LEFT', 'NEXT RENEWAL (UTC)', 'LAST ERROR'],
      certificates.map((c) => [
        c.names.length > 1 ? `${c.primary} (+${c.names.length - 1})` : c.primary,
        c.issuer ? truncate(c.issuer.commonName || c.issuer.key, 40) : c.status,
        shortTime(c.notAfter),
        c.notAfter ? daysLeft(c.notAfter, now).toFixed(1) : '-',
        c.renewal ? `${shortTime(c.renewal.at)} (${c.renewal.reason})` : '-',
        lastError(c),
      ])
    ))
    return ExitCode.OK
  } finally {
    await storage.close?.()
  }
}

function lastError (c: StoredCertificate): string {
  if (c.error) return truncate(`${c.error.code}: ${c.error.message}`, 70)
  if (!c.lastError) return '-'
  const next = c.nextAttemptAt === null ? 'gave up' : c.nextAttemptAt ? `next ${shortTime(c.nextAttemptAt)}` : ''
  return `${truncate(`${c.lastError.code}: ${c.lastError.message}`, 60)} (${c.failures}x${next ? `, ${next}` : ''})`
}

function toJson (c: StoredCertificate, now: Date): Record<string, unknown> {
  return {
    name: c.primary,
    names: c.names,
    status: c.status,
    ...(c.issuer ? { issuer: c.issuer } : {}),
    ...(c.serial ? { serial: c.serial } : {}),
    ...(c.keyType ? { keyType: c.keyType } : {}),
    ...(c.notBefore ? { notBefore: c.notBefore } : {}),
    ...(c.notAfter ? { notAfter: c.notAfter, daysLeft: daysLeft(c.notAfter, now) } : {}),
    ...(c.renewal ? { renewal: c.renewal } : {}),
    ...(c.ari ? { ari: c.ari } : {}),
    failures: c.failures,
    ...(c.lastError ? { lastError: c.lastError } : {}),
    ...(c.nextAttemptAt !== undefined ? { nextAttemptAt: c.nextAttemptAt } : {}),
    ...(c.error ? { error: c.error } : {}),
  }
}
