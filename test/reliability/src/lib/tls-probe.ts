import tls from 'node:tls'

export interface HandshakeResult {
  ok: boolean
  /** the served leaf's serial (lower-case hex), when the handshake completed */
  serial?: string
  error?: string
}

/**
 * One new TLS connection with SNI `servername`: ok when the chain verifies against `ca` and the
 * leaf is valid for the name. Never rejects.
 */
export function handshake (host: string, port: number, servername: string, ca: string, timeoutMs = 10_000): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername, ca, ALPNProtocols: ['http/1.1'], timeout: timeoutMs }, () => {
      const cert = socket.getPeerX509Certificate()
      const ok = socket.authorized && cert?.checkHost(servername) !== undefined
      socket.destroy()
      resolve({ ok, serial: cert?.serialNumber.toLowerCase(), ...(ok ? {} : { error: socket.authorizationError?.message ?? 'name mismatch' }) })
    })
    socket.on('timeout', () => { socket.destroy(); resolve({ ok: false, error: 'timeout' }) })
    socket.on('error', (err) => resolve({ ok: false, error: err.message }))
  })
}

/** Runs `job` over `items` with at most `limit` at once. */
export async function pool<T, R> (items: T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await job(items[i]!)
    }
  }))
  return out
}
