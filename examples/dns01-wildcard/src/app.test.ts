import { startKnot, startPebble, type Knot, type Pebble } from '@fastify-acme/harness'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from './app.js'

/*
 * A real authoritative server (Knot DNS, DNS UPDATE with a TSIG key) and a Pebble that resolves
 * every name through it, so the CA validates DNS-01 against what the app wrote.
 */
describe('examples/dns01-wildcard', () => {
  let knot: Knot
  let pebble: Pebble
  const dataDir = mkdtempSync(path.join(tmpdir(), 'example-dns01-'))
  let app: Awaited<ReturnType<typeof buildApp>> | undefined

  beforeAll(async () => {
    knot = await startKnot({ zones: [{ name: 'example.test' }] })
    pebble = await startPebble({ dnsServer: knot.address })
  })
  afterAll(async () => {
    await app?.close()
    await Promise.all([pebble?.stop(), knot?.stop()])
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('obtains *.example.test + example.test with DNS-01 over RFC 2136, serves any one-label subdomain, and removes the TXT records', async () => {
    app = await buildApp({
      zone: 'example.test',
      dns: { server: knot.address, tsig: knot.tsig },
      resolvers: [knot.address],
      dataDir,
      acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, env: false },
    })
    const obtained = new Promise((resolve) => app!.acme.once('obtained', resolve))
    await app.listen({ port: 0, host: '127.0.0.1' })
    await obtained
    expect(app.acme.list()).toMatchObject([{ names: ['*.example.test', 'example.test'], status: 'valid' }])

    const { port } = app.server.address() as { port: number }
    const root = await pebble.rootCertificate()
    for (const name of ['www.example.test', 'api.example.test', 'example.test']) {
      const leaf = await handshake(port, name, root)
      expect(leaf.subjectAltName?.split(', ').sort()).toEqual(['DNS:*.example.test', 'DNS:example.test'])
    }
    // a wildcard covers one label: a.b.example.test gets no certificate
    await expect(handshake(port, 'a.b.example.test', root)).rejects.toThrow()

    // the challenge records are gone (cleanup may end just after the order)
    const deadline = Date.now() + 5000
    while ((await knot.txt('_acme-challenge.example.test')).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(await knot.records('example.test', undefined, 'TXT')).toEqual([])
  })
})

function handshake (port: number, servername: string, ca: string): Promise<import('node:crypto').X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => {
      const cert = socket.getPeerX509Certificate()
      socket.destroy()
      if (cert) resolve(cert)
      else reject(new Error('no certificate'))
    })
    socket.on('error', reject)
  })
}
