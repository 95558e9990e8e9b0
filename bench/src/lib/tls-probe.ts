import https from 'node:https'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'

const now = () => performance.timeOrigin + performance.now()

export interface Target {
  host: string
  port: number
  servername: string
  /** PEM roots the served chain must verify against */
  ca: string
}

/** One HTTPS GET / with a new connection; resolves with the status, rejects on any TLS or HTTP error. */
export function httpsGet (target: Target, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get({
      host: target.host,
      port: target.port,
      servername: target.servername,
      headers: { host: target.servername },
      ca: target.ca,
      agent: false,
      timeout: timeoutMs,
    }, (res) => {
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`HTTP ${res.statusCode}`))))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

/**
 * Retries an HTTPS GET until it succeeds (chain verified against target.ca, name checked),
 * waiting retryMs, doubling up to maxRetryMs, between tries: resolves with the wall-clock
 * time of the first success.
 */
export async function firstResponse (target: Target, opts: { retryMs: number, maxRetryMs: number, deadline: number }): Promise<number> {
  let last: unknown
  let wait = opts.retryMs
  while (now() < opts.deadline) {
    try {
      await httpsGet(target, Math.max(1000, opts.deadline - now()))
      return now()
    } catch (err) {
      last = err
      await sleep(wait)
      wait = Math.min(opts.maxRetryMs, wait * 2)
    }
  }
  throw new Error(`no valid HTTPS response from ${target.servername} (${target.host}:${target.port}): ${(last as Error)?.message}`)
}

/** One new TLS connection and full handshake, verified: its duration in ms and the served leaf's serial. */
export function handshakeOnce (target: Target): Promise<{ ms: number, serial: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const socket = tls.connect({ host: target.host, port: target.port, servername: target.servername, ca: target.ca, ALPNProtocols: ['http/1.1'] })
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')))
    socket.once('secureConnect', () => {
      const ms = performance.now() - started
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? ''
      socket.destroy()
      resolve({ ms, serial })
    })
    socket.once('error', reject)
  })
}
