import { AcmeError, ErrorCodes, normalizeName, type CertificateManager, type Logger } from '@fastify-acme/core'
import http from 'node:http'
import net from 'node:net'

const PREFIX = '/.well-known/acme-challenge/'

/** Where the plugin's own HTTP listener binds. */
export interface Http01ListenerOptions {
  /** default 80; the port CAs use for HTTP-01 */
  port: number
  /** default '::' (all addresses, IPv4 too) */
  host: string
  /** 308-redirect every other request for a name served here to https (default true); false, or another name, answers 404 */
  redirect: boolean
  /** the HTTPS port to redirect to (read at each request: the app may listen after this starts); 443 when unknown */
  httpsPort?: () => number | undefined
}

/**
 * A small HTTP server for port 80: answers ACME HTTP-01 tokens and redirects everything else
 * to https (308 keeps the method and body). Nothing else runs on it.
 */
export async function startHttp01Listener (manager: CertificateManager, opts: Http01ListenerOptions, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const target = requestTarget(req.url, req.headers.host)
    if (!target) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request')
      return
    }
    if (target.pathname.startsWith(PREFIX) && (req.method === 'GET' || req.method === 'HEAD')) {
      manager.respondHttp01(target.host, target.pathname.slice(PREFIX.length)).then(
        (body) => res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' }).end(body ?? 'not found'),
        () => res.writeHead(400, { 'content-type': 'text/plain' }).end('bad challenge request')
      )
      return
    }
    if (!opts.redirect) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    // only to names served here: the Host header is the client's to choose
    manager.serves(target.hostname.replace(/^\[(.*)\]$/, '$1')).then((served) => {
      if (!served) return res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      const httpsPort = opts.httpsPort?.()
      const port = httpsPort && httpsPort !== 443 ? `:${httpsPort}` : ''
      res.writeHead(308, { location: `https://${target.hostname}${port}${target.pathname}${target.search}` }).end()
    }, () => res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'))
  })
  server.keepAliveTimeout = 5000
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  const listen = (host: string) => new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, host, () => { server.off('error', reject); resolve() })
  })
  try {
    await listen(opts.host).catch((err: NodeJS.ErrnoException) => {
      // '::' also takes IPv4, but not on hosts with IPv6 disabled
      if (opts.host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) return listen('0.0.0.0')
      throw err
    })
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    const hint = code === 'EACCES'
      ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep $(which node))'
      : code === 'EADDRINUSE' ? 'another server holds it: route /.well-known/acme-challenge/ to this app and set challenges.http01.port: false' : (cause as Error).message
    throw new AcmeError(ErrorCodes.INVALID_OPTION, `cannot listen on ${opts.host}:${opts.port} for HTTP-01 (${code}): ${hint}; or choose challenges.http01.port, or disable the listener with challenges.http01: { port: false }`, { cause })
  }
  server.on('error', (err) => log.error({ err: err.message }, 'HTTP-01 listener error'))
  log.info({ port: opts.port, host: opts.host }, 'HTTP-01 listener started')
  return server
}

/** Where a request goes: `host` (with its port) for challenge matching, `hostname` for the redirect. */
interface RequestTarget { host: string, hostname: string, pathname: string, search: string }

/**
 * The request target, or undefined when it or the host is malformed (400). Origin-form
 * (`/path?query`) goes with the Host header; absolute-form (`http://host/path`, as proxies send
 * it) carries its own host, which wins over Host (RFC 9112 §3.2.2). The path is kept as sent
 * (`/.well-known/acme-challenge/../x` is a bad token, not /x), split from its query, so a query
 * string neither hides a challenge token nor ends up in the redirect's host.
 */
function requestTarget (url = '/', hostHeader: string | undefined): RequestTarget | undefined {
  let authority = hostHeader
  let rest = url
  if (!url.startsWith('/')) {
    const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url)
    if (!absolute) return undefined
    authority = absolute[1]!
    rest = absolute[2] || '/'
  }
  const query = rest.indexOf('?')
  const host = authority === undefined ? undefined : parseHost(authority)
  return host && { ...host, pathname: query === -1 ? rest : rest.slice(0, query), search: query === -1 ? '' : rest.slice(query) }
}

/** `name[:port]` or `[IPv6][:port]`, checked and normalised; undefined when malformed (`a.com:80:99`, `bad host`). */
function parseHost (value: string): { host: string, hostname: string } | undefined {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(value)
  if (!match || Number(match[2] ?? 0) > 65535) return undefined
  const [, raw, port] = match as unknown as [string, string, string | undefined]
  if (raw.startsWith('[') && !net.isIPv6(raw.slice(1, -1))) return undefined
  let name: string
  try { name = normalizeName(raw) } catch { return undefined }
  if (name.includes('*')) return undefined
  const hostname = net.isIPv6(name) ? `[${name}]` : name
  return { hostname, host: port ? `${hostname}:${port}` : hostname }
}
