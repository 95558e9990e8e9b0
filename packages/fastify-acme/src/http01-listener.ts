import { AcmeError, ErrorCodes, type CertificateManager, type Logger } from '@fastify-acme/core'
import http from 'node:http'

const PREFIX = '/.well-known/acme-challenge/'

/** Where the plugin's own HTTP listener binds. */
export interface Http01ListenerOptions {
  /** default 80; the port CAs use for HTTP-01 */
  port: number
  /** default '::' (all addresses, IPv4 too) */
  host: string
  /** 308-redirect every other request to https (default true); false answers 404 */
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
    const url = req.url ?? '/'
    if (url.startsWith(PREFIX) && (req.method === 'GET' || req.method === 'HEAD')) {
      manager.respondHttp01(req.headers.host, url.slice(PREFIX.length)).then(
        (body) => res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' }).end(body ?? 'not found'),
        () => res.writeHead(400, { 'content-type': 'text/plain' }).end('bad challenge request')
      )
      return
    }
    const host = (req.headers.host ?? '').replace(/:\d+$/, '')
    if (!opts.redirect || !host || /[^A-Za-z0-9.\-[\]:]/.test(host)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    const httpsPort = opts.httpsPort?.()
    const port = httpsPort && httpsPort !== 443 ? `:${httpsPort}` : ''
    res.writeHead(308, { location: `https://${host}${port}${url}` }).end()
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
