import {
  AcmeIssuer, isAcmeError, isIpAddress, isWildcard, StorageKeys, silentLogger, type Storage,
} from '@fastify-acme/core'
import { Resolver } from 'node:dns/promises'
import net from 'node:net'
import { networkInterfaces } from 'node:os'

/** One doctor check: ok, warn (worth a look, not a failure), fail, or skip (not applicable). */
export interface Check {
  /** e.g. `port:80`, `dns:example.com`, `storage`, `ca:https://...` */
  name: string
  status: 'ok' | 'warn' | 'fail' | 'skip'
  message: string
  details?: Record<string, unknown>
}

/**
 * Whether this process can serve `port`: it binds it (then frees it at once), or the port is
 * taken and something on it accepts connections (your running app, probably).
 */
export async function checkPort (port: number, host: string, timeoutMs: number): Promise<Check> {
  const name = `port:${port}`
  const bound = await tryBind(port, host)
  if (bound === 'ok') return { name, status: 'ok', message: `port ${port} is free and this user can bind it on ${host}` }
  if (bound === 'EACCES') {
    return {
      name,
      status: 'fail',
      message: `this user (uid ${process.getuid?.() ?? '?'}) may not bind port ${port}: run as root, grant node CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep "$(command -v node)"), or forward the port`,
    }
  }
  if (bound === 'EADDRINUSE') {
    const target = host === '::' || host === '0.0.0.0' ? '127.0.0.1' : host
    return await connects(target, port, timeoutMs)
      ? { name, status: 'ok', message: `port ${port} is in use and accepts connections on ${target} (your server?)` }
      : { name, status: 'fail', message: `port ${port} is in use but nothing accepts connections on ${target}` }
  }
  return { name, status: 'fail', message: `cannot bind port ${port} on ${host}: ${bound}` }
}

/** A, AAAA answers for `name`; fails when there are none. */
export async function checkDns (name: string, opts: { servers?: string[], timeoutMs: number }): Promise<Check> {
  const check = `dns:${name}`
  if (isWildcard(name)) return { name: check, status: 'skip', message: `${name} is a wildcard: it is validated with DNS-01, not resolved` }
  if (isIpAddress(name)) return { name: check, status: 'skip', message: `${name} is an IP address` }
  const resolver = new Resolver({ timeout: opts.timeoutMs, tries: 2 })
  if (opts.servers) resolver.setServers(opts.servers)
  const answers = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)])
  const addresses = answers.flatMap((a) => a.status === 'fulfilled' ? a.value : [])
  if (addresses.length === 0) {
    const codes = answers.map((a) => a.status === 'rejected' ? (a.reason as NodeJS.ErrnoException).code : 'no answer')
    if (codes.every((c) => c === 'ECONNREFUSED' || c === 'ETIMEOUT')) {
      return { name: check, status: 'fail', message: `cannot look up ${name}: the DNS server${opts.servers ? ` (${opts.servers.join(', ')})` : 's'} did not answer (${codes[0]})` }
    }
    return { name: check, status: 'fail', message: `${name} has no A or AAAA record (${codes.join(', ')}): the CA cannot reach this host for HTTP-01 or TLS-ALPN-01` }
  }
  const local = new Set(Object.values(networkInterfaces()).flat().map((i) => i?.address).filter(Boolean))
  const here = addresses.filter((a) => local.has(a))
  return {
    name: check,
    status: 'ok',
    message: here.length > 0
      ? `${name} resolves to ${addresses.join(', ')} (an address of this host)`
      : `${name} resolves to ${addresses.join(', ')} (not an address of this host: fine behind NAT or a load balancer that forwards ports 80/443 here)`,
    details: { addresses, local: here.length > 0 },
  }
}

/** A write, read-back, delete and a lock acquire/release on the storage, timed. */
export async function checkStorage (storage: Storage, timeoutMs: number): Promise<Check> {
  const started = performance.now()
  const key = StorageKeys.healthCheck(`doctor-${process.pid}-${Date.now().toString(36)}`)
  const value = `doctor ${new Date().toISOString()}`
  // each step within --timeout-ms (an adapter's own timeouts can be longer)
  const within = <T>(step: string, work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${step} did not answer within ${timeoutMs} ms`)), timeoutMs) })
    return Promise.race([work, late]).finally(() => clearTimeout(timer))
  }
  try {
    await within('put', storage.put(key, value))
    const read = await within('get', storage.get(key))
    if (!read || Buffer.from(read).toString('utf8') !== value) throw new Error('read back a different value')
    await within('delete', storage.delete(key))
    if (await within('get', storage.get(key))) throw new Error('a deleted value is still there')
    const lock = await storage.lock(`doctor/${process.pid}`, { ttlMs: 10_000, signal: AbortSignal.timeout(timeoutMs) })
    await lock.release()
    const certificates = await within('list', storage.list(StorageKeys.certificatesPrefix))
    const ms = Math.round(performance.now() - started)
    return { name: 'storage', status: 'ok', message: `write, read, delete and lock round trip in ${ms} ms; ${certificates.length} certificate(s) stored`, details: { ms, certificates: certificates.length } }
  } catch (err) {
    await storage.delete(key).catch(() => {})
    const code = isAcmeError(err) ? ` (${err.code})` : ''
    return { name: 'storage', status: 'fail', message: `storage round trip failed${code}: ${(err as Error).message}` }
  }
}

/** The CA's directory over HTTPS with the configured trust: reachable, trusted, and what it requires. */
export async function checkCa (directoryUrl: string, opts: { caBundle?: string, eab: boolean, storage: Storage, timeoutMs: number }): Promise<Check> {
  const name = `ca:${directoryUrl}`
  if (directoryUrl === 'local') return { name, status: 'ok', message: 'the embedded local CA: nothing to reach' }
  const issuer = new AcmeIssuer(
    { directoryUrl, ...(opts.caBundle ? { caBundle: opts.caBundle } : {}), retry: { attempts: 2, baseDelayMs: 250, maxInlineWaitMs: 1000 } },
    { storage: opts.storage, solvers: [], logger: silentLogger }
  )
  const started = performance.now()
  try {
    const directory = await issuer.directory(AbortSignal.timeout(opts.timeoutMs))
    const ms = Math.round(performance.now() - started)
    const meta = (directory.meta ?? {}) as Record<string, unknown>
    const details = {
      ms,
      termsOfService: meta.termsOfService,
      externalAccountRequired: meta.externalAccountRequired === true,
      ari: typeof directory.renewalInfo === 'string',
      profiles: meta.profiles ? Object.keys(meta.profiles as object) : [],
    }
    if (details.externalAccountRequired && !opts.eab) {
      return { name, status: 'fail', message: 'reachable and trusted, but the CA requires External Account Binding: set ACME_EAB_KID and ACME_EAB_HMAC_KEY', details }
    }
    return { name, status: 'ok', message: `reachable and trusted in ${ms} ms${details.ari ? '; offers ARI' : ''}`, details }
  } catch (err) {
    const code = isAcmeError(err) ? err.code : 'UNKNOWN'
    const hint = code === 'ERR_ACME_CA_TLS' ? ' (pass the CA certificate with --ca-bundle or ACME_CA_BUNDLE)' : ''
    return { name, status: 'fail', message: `${(err as Error).message}${hint}`, details: { code } }
  } finally {
    await issuer.close()
  }
}

async function tryBind (port: number, host: string): Promise<'ok' | string> {
  const attempt = (h: string) => new Promise<'ok' | string>((resolve) => {
    const server = net.createServer()
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    server.listen({ port, host: h, exclusive: true }, () => server.close(() => resolve('ok')))
  })
  const result = await attempt(host)
  // a host without IPv6 cannot bind '::'; IPv4 is what matters then
  return host === '::' && (result === 'EAFNOSUPPORT' || result === 'EADDRNOTAVAIL') ? attempt('0.0.0.0') : result
}

function connects (host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: timeoutMs })
    const done = (ok: boolean) => { socket.destroy(); resolve(ok) }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}
