import { memoryStorage } from '@fastify-acme/core'
import { challtestsrvClient, getText, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import type { FastifyInstance } from 'fastify'
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

/** A site for one test: its own loopback address, and a fresh name Pebble resolves to it. */
export async function newSite (label = 'app'): Promise<{ address: string, name: string }> {
  const address = uniqueLoopbackAddress()
  return { address, name: await pointName(address, label) }
}

/**
 * Plugin options for the shared Pebble: its directory and trust, ToS agreed, no environment,
 * memory storage, and HTTP-01 answered by the plugin's listener at `address`.
 */
export function pebbleOptions (address: string) {
  const { pebble } = services()
  return {
    directoryUrl: pebble.directoryUrl,
    caBundle: pebble.caBundle,
    termsOfServiceAgreed: true,
    env: false as const,
    storage: memoryStorage(),
    challenges: { http01: { port: pebble.httpPort, host: address } },
  }
}

/** Listens on `address` and resolves once the first certificate is obtained; returns the port. */
export async function listenAndObtain (app: FastifyInstance, address: string, port = 0): Promise<number> {
  const obtained = new Promise((resolve) => app.acme.once('obtained', resolve))
  await app.listen({ port, host: address })
  await obtained
  return (app.server.address() as { port: number }).port
}

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
