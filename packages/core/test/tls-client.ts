import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import type { CertificateManager } from '../src/manager/manager.js'

/** Serves `manager`'s certificates over TLS by SNI (like the plugin), for real handshakes in tests. */
export async function serveTls (manager: CertificateManager, host = '127.0.0.1'): Promise<{ port: number, close: () => Promise<void> }> {
  const server = tls.createServer({
    SNICallback: (name, cb) => {
      const ctx = manager.secureContext(name)
      if (ctx) return cb(null, ctx)
      manager.loadSecureContext(name).then((c) => cb(null, c), (err) => cb(err))
    },
  }, (socket) => socket.end('hello'))
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as { port: number }
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

/** Connects with SNI `servername`, verifying against `ca`; resolves with the served leaf. */
export function handshake (port: number, servername: string, ca: string, host = '127.0.0.1'): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host, servername, ca }, () => {
      const cert = socket.getPeerX509Certificate()
      socket.destroy()
      if (!cert) reject(new Error('no peer certificate'))
      else resolve(cert)
    })
    socket.on('error', reject)
  })
}
