import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import tls from 'node:tls'

/** A TLS server started on a free loopback port; it echoes what it reads. */
export async function startTlsServer (options: tls.TlsOptions): Promise<{ server: tls.Server, port: number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = tls.createServer(options, (socket) => {
    socket.on('error', () => {})
    socket.on('data', (chunk) => socket.write(chunk))
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('tlsClientError', () => {})
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** What a client saw in one handshake. */
export interface Handshake {
  socket: tls.TLSSocket
  authorized: boolean
  authorizationError: string | undefined
  /** lower-case hex serial of the served leaf ('' when a resumed session sent none) */
  serial: string
  subjectCN: string | undefined
  alpn: string | false | null
  peer: tls.DetailedPeerCertificate
}

/**
 * Connects with `options` (never rejecting an untrusted peer, so the test can look at what was
 * served) and resolves after the handshake. The caller ends `socket`.
 */
export async function handshake (port: number, options: tls.ConnectionOptions): Promise<Handshake> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  const peer = socket.getPeerCertificate(true)
  return {
    socket,
    authorized: socket.authorized,
    authorizationError: socket.authorizationError === undefined ? undefined : String(socket.authorizationError),
    serial: peer.serialNumber?.toLowerCase() ?? '',
    subjectCN: typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined,
    alpn: socket.alpnProtocol,
    peer,
  }
}

/** Writes `text` and resolves with the echo: proves an open connection still works. */
export async function echo (socket: tls.TLSSocket, text: string): Promise<string> {
  socket.write(text)
  const [chunk] = await once(socket, 'data') as [Buffer]
  return chunk.toString()
}
