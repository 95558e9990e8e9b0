import { challtestsrvClient, getText, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { X509Certificate } from 'node:crypto'
import https from 'node:https'
import tls from 'node:tls'

let counter = 0

/** A fresh name Pebble resolves to `address` (through challtestsrv). */
export async function pointName (address: string, label = 'app'): Promise<string> {
  counter += 1
  const name = `${label}${counter}-${process.pid}-${Date.now().toString(36)}.example.test`
  const { challtestsrv } = services()
  await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(name, [address])
  return name
}

export { uniqueLoopbackAddress }

/** Pebble's current root, which signs every certificate it issues. */
export function pebbleRoot (): Promise<string> {
  const { pebble } = services()
  return getText(`${pebble.managementUrl}/roots/0`, pebble.caBundle)
}

/** A TLS handshake with SNI `servername`, verified against `ca`; resolves with the served leaf. */
export function peerCertificate (host: string, port: number, servername: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername, ca, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = socket.getPeerX509Certificate()
      socket.destroy()
      if (cert) resolve(cert)
      else reject(new Error('no certificate'))
    })
    socket.on('error', reject)
  })
}

/** An HTTPS GET with SNI and Host `servername` to host:port, verified against `ca`. */
export function httpsGet (host: string, port: number, servername: string, ca: string, path = '/'): Promise<{ status: number, body: string, serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host, port, path, servername, ca, headers: { host: servername }, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial: (res.socket as tls.TLSSocket).getPeerX509Certificate?.()?.serialNumber ?? '' }))
    })
    req.on('error', reject)
  })
}
