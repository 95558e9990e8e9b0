import net from 'node:net'

/** A DNS server address: IP or host name, and port (default 53). */
export interface ServerAddress {
  host: string
  port: number
}

/** Parses 'host', 'host:port', '[v6]' or '[v6]:port' (a bare IPv6 address has no port). */
export function parseServer (value: string): ServerAddress | undefined {
  if (typeof value !== 'string' || value === '') return undefined
  if (net.isIPv6(value)) return { host: value, port: 53 }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(value)
  if (!m) return undefined
  const port = m[3] === undefined ? 53 : Number(m[3])
  if (port < 1 || port > 65535) return undefined
  return { host: m[1] ?? m[2]!, port }
}

/**
 * One DNS exchange over TCP (RFC 7766: every server takes TCP, and nothing is truncated):
 * sends the 2-byte length-prefixed message and resolves with the response's bytes.
 */
export function exchangeTcp (server: ServerAddress, message: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const socket = net.connect({ host: server.host, port: server.port })
    let received = Buffer.alloc(0)
    const finish = (err: Error | null, value?: Buffer) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      if (err) reject(err)
      else resolve(value!)
    }
    const onAbort = () => finish(signal!.reason as Error)
    const timer = setTimeout(() => finish(new Error(`no answer from ${server.host}:${server.port} within ${timeoutMs} ms`)), timeoutMs)
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('connect', () => {
      const length = Buffer.alloc(2)
      length.writeUInt16BE(message.length)
      socket.write(Buffer.concat([length, message]))
    })
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        finish(null, received.subarray(2, 2 + received.readUInt16BE(0)))
      }
    })
    socket.on('error', (err) => finish(new Error(`${server.host}:${server.port}: ${err.message}`, { cause: err })))
    socket.on('end', () => finish(new Error(`${server.host}:${server.port} closed the connection before answering`)))
  })
}
