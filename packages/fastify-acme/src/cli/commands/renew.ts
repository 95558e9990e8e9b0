import { ErrorCodes, type CertificateManager } from '@fastify-acme/core'
import type { Server } from 'node:http'
import { startHttp01Listener } from '../../http01-listener.js'
import { CliError, ExitCode, nameArgument, portValue, stringOption, usageError } from '../args.js'
import { managerFor, withStoredCertificate, type CliContext } from '../context.js'
import { printJson, shortTime } from '../output.js'

/** RFC 5280 revocation reasons an ACME CA accepts (7 is unused). */
const REVOCATION_REASONS = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]

/** `renew <name> [--force]`: renews through a CertificateManager, if due (or now with --force). */
export async function renewCommand (ctx: CliContext): Promise<number> {
  const name = nameArgument('renew', ctx.args)
  const httpPort = stringOption(ctx.values, 'http-port')
  const port = httpPort === undefined ? undefined : portValue('http-port', httpPort)
  return withStoredCertificate(ctx, name, async (storage, bundle) => {
    const manager = await managerFor(ctx, storage, bundle)
    let listener: Server | undefined
    try {
      if (port !== undefined) {
        listener = await startHttp01Listener(manager, { port, host: stringOption(ctx.values, 'http-host') ?? '::', redirect: false }, ctx.logger).catch((err: Error) => {
          throw new CliError(`--http-port ${port}: ${(err as NodeJS.ErrnoException).code === 'EADDRINUSE' || /in use|holds it/.test(err.message) ? 'the port is in use (an app sharing this storage answers the CA itself: leave out --http-port)' : err.message}`, ExitCode.FAILURE, ErrorCodes.INVALID_OPTION)
        })
      }
      manager.add([bundle.names])
      // an order takes seconds, a CA that does not answer minutes: say what is going on
      const notice = setTimeout(() => ctx.err(`renewing ${bundle.names[0]}: waiting for the CA (Ctrl-C stops and releases the lock)...\n`), 3000)
      const info = await manager.renew(bundle.names[0]!, { force: ctx.values.force === true, ...(ctx.signal ? { signal: ctx.signal } : {}) })
        .finally(() => clearTimeout(notice))
      const renewed = info.serial !== bundle.serial
      if (ctx.json) {
        printJson(ctx, { ok: true, name: bundle.names[0], names: bundle.names, renewed, serialBefore: bundle.serial, serialAfter: info.serial, notAfter: info.notAfter, renewal: info.renewal })
      } else if (renewed) {
        ctx.out(`Renewed ${bundle.names[0]}: serial ${bundle.serial} -> ${info.serial}, valid until ${shortTime(info.notAfter)} UTC.\n`)
      } else {
        ctx.out(`${bundle.names[0]} is not due: renewal at ${shortTime(info.renewal?.at)} UTC (${info.renewal?.reason}). Use --force to renew now.\n`)
      }
      return ExitCode.OK
    } finally {
      if (listener) await new Promise<void>((resolve) => { listener!.close(() => resolve()); listener!.closeAllConnections() })
      await manager.close()
    }
  })
}

/** `revoke <name> --yes [--reason n]`: revokes at the CA and deletes the certificate from storage. */
export async function revokeCommand (ctx: CliContext): Promise<number> {
  const name = nameArgument('revoke', ctx.args)
  if (ctx.values.yes !== true) throw usageError('revoke cannot be undone: it revokes the certificate at its CA and deletes it and its key from storage. Pass --yes to go ahead')
  const rawReason = stringOption(ctx.values, 'reason') ?? '0'
  const reason = Number(rawReason)
  if (!/^\d+$/.test(rawReason) || !REVOCATION_REASONS.includes(reason)) throw usageError(`--reason must be an RFC 5280 reason code (${REVOCATION_REASONS.join(', ')}), got "${rawReason}"`)
  return withStoredCertificate(ctx, name, async (storage, bundle) => {
    const manager: CertificateManager = await managerFor(ctx, storage, bundle)
    try {
      manager.add([bundle.names])
      await manager.revoke(bundle.names[0]!, { reason })
    } finally {
      await manager.close()
    }
    if (ctx.json) printJson(ctx, { ok: true, name: bundle.names[0], names: bundle.names, revoked: true, serial: bundle.serial, reason })
    else ctx.out(`Revoked ${bundle.names[0]} (serial ${bundle.serial}, reason ${reason}) and deleted it from storage.\n`)
    return ExitCode.OK
  })
}
