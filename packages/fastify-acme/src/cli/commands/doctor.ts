import { memoryStorage, normalizeName, readStoredCertificates, resolveDirectoryUrl, type Storage } from '@fastify-acme/core'
import { isIP } from 'node:net'
import { ExitCode, portValue, stringOption, usageError } from '../args.js'
import { openStorage, shownStorageUrl, type CliContext } from '../context.js'
import { checkCa, checkDns, checkPort, checkStorage, type Check } from '../doctor-checks.js'
import { printJson } from '../output.js'

const MARK: Record<Check['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' }

/** An IP address, with an optional port (IPv6 in brackets then), as Resolver.setServers() takes. */
function isDnsServer (server: string): boolean {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(server) ?? /^([^:]+):(\d+)$/.exec(server)
  const [address, port] = m ? [m[1]!, Number(m[2])] : [server, 53]
  return isIP(address) !== 0 && port > 0 && port < 65536
}

/**
 * `doctor`: can this host serve ports 80/443 (or --ports), does each stored name (and --name)
 * resolve, does the storage write/read/delete/lock, is the CA directory reachable and trusted.
 * Exit 0 when nothing failed, 3 when a check failed.
 */
export async function doctorCommand (ctx: CliContext): Promise<number> {
  if (ctx.args.length > 0) throw usageError('doctor takes no argument (use --name <name> to check more names)')
  const ports = (stringOption(ctx.values, 'ports') ?? '80,443').split(',').map((p) => portValue('ports', p.trim()))
  const host = stringOption(ctx.values, 'host') ?? '::'
  const rawTimeout = stringOption(ctx.values, 'timeout-ms') ?? '5000'
  const timeoutMs = Number(rawTimeout)
  if (!/^\d+$/.test(rawTimeout) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) throw usageError(`--timeout-ms must be a positive integer (at most 2147483647), got "${rawTimeout}"`)
  const dnsServer = stringOption(ctx.values, 'dns-server')
  const servers = dnsServer?.split(',').map((s) => s.trim()).filter(Boolean)
  for (const server of servers ?? []) {
    if (!isDnsServer(server)) throw usageError(`--dns-server must be IP addresses with an optional port ('192.0.2.53', '192.0.2.53:5353', '[2001:db8::53]:53'), got "${server}"`)
  }
  const extraNames = ((ctx.values.name as string[] | undefined) ?? []).map((n) => {
    try { return normalizeName(n) } catch { throw usageError(`--name "${n}" is not a domain name or IP address`) }
  })

  const checks: Check[] = []
  for (const port of ports) checks.push(await checkPort(port, host, timeoutMs))

  let storage: Storage | undefined
  try {
    storage = await openStorage(ctx)
  } catch (err) {
    checks.push({ name: 'storage', status: 'fail', message: `cannot open ${shownStorageUrl(ctx)}: ${(err as Error).message}` })
  }
  try {
    let stored: Awaited<ReturnType<typeof readStoredCertificates>> = []
    let storageOk = false
    if (storage) {
      const result = await checkStorage(storage, timeoutMs)
      checks.push(result)
      storageOk = result.status === 'ok'
      if (storageOk) stored = await readStoredCertificates(storage).catch(() => [])
    }
    const names = [...new Set([...stored.flatMap((c) => c.names), ...extraNames])]
    if (names.length === 0) {
      checks.push({ name: 'dns', status: 'skip', message: storageOk ? 'no stored certificate and no --name: no name to resolve' : 'the stored names are unknown (the storage check failed) and no --name is given' })
    }
    const dns = await Promise.all(names.map((name) => checkDns(name, { ...(servers ? { servers } : {}), timeoutMs })))
    checks.push(...dns)

    const directories = new Set<string>()
    if (ctx.ca.directoryUrl) directories.add(resolveDirectoryUrl(ctx.ca.directoryUrl))
    for (const c of stored) if (c.issuer && c.issuer.directoryUrl !== 'imported') directories.add(c.issuer.directoryUrl)
    if (directories.size === 0) checks.push({ name: 'ca', status: 'skip', message: 'no CA configured (--directory or ACME_DIRECTORY_URL) and none in storage' })
    for (const url of directories) {
      checks.push(await checkCa(url, { ...(ctx.ca.caBundle ? { caBundle: ctx.ca.caBundle } : {}), eab: ctx.ca.eab !== undefined, storage: storage ?? memoryStorage(), timeoutMs }))
    }
  } finally {
    await storage?.close?.()
  }

  const ok = !checks.some((c) => c.status === 'fail')
  if (ctx.json) {
    printJson(ctx, { ok, storage: shownStorageUrl(ctx), checks })
  } else {
    for (const c of checks) ctx.out(`${MARK[c.status]}  ${c.name.padEnd(28)} ${c.message}\n`)
    ctx.out(ok ? '\nNo problem found.\n' : `\n${checks.filter((c) => c.status === 'fail').length} problem(s) found.\n`)
  }
  return ok ? ExitCode.OK : ExitCode.PROBLEMS
}
