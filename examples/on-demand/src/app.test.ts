import { challtestsrvClient, getText, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from './app.js'

describe('examples/on-demand', () => {
  const { pebble, challtestsrv } = services()
  const address = uniqueLoopbackAddress()
  const allowedName = `shop-${process.pid}.example.test`
  const deniedName = `intruder-${process.pid}.example.test`
  const dataDir = mkdtempSync(path.join(tmpdir(), 'example-on-demand-'))
  const asked: string[] = []
  let app: Awaited<ReturnType<typeof buildApp>>
  let port: number
  let root: string

  beforeAll(async () => {
    const dns = challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer)
    await Promise.all([dns.addA(allowedName, [address]), dns.addA(deniedName, [address])])
    const allowList = new Set([allowedName])
    app = await buildApp({
      allowed: (name) => { asked.push(name); return allowList.has(name) },
      dataDir,
      acme: {
        directoryUrl: pebble.directoryUrl,
        caBundle: pebble.caBundle,
        termsOfServiceAgreed: true,
        env: false,
        challenges: { http01: { port: pebble.httpPort, host: address } },
      },
    })
    await app.listen({ port: 0, host: address })
    port = (app.server.address() as { port: number }).port
    root = await getText(`${pebble.managementUrl}/roots/0`, pebble.caBundle)
  })
  afterAll(async () => {
    await app?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('serves an allowed name at its very first handshake, with a certificate ordered for it', async () => {
    expect(app.acme.list()).toEqual([]) // nothing configured in advance
    const res = await get(allowedName)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ hello: allowedName })
    expect(res.san).toBe(`DNS:${allowedName}`)
    expect(app.acme.list()).toMatchObject([{ names: [allowedName], status: 'valid', onDemand: true }])
    expect(storedNames()).toContain(allowedName)
  })

  it('refuses the handshake of a denied name, orders nothing and stores nothing for it', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: address, port, servername: deniedName, ca: root }, () => {
        socket.destroy()
        resolve('connected')
      })
      socket.on('error', (err) => resolve(`refused: ${err.message}`))
    })
    expect(outcome).toMatch(/^refused/)
    expect(asked).toContain(deniedName)
    expect(app.acme.list().map((c) => c.names[0])).toEqual([allowedName])
    expect(storedNames()).not.toContain(deniedName)
  })

  function get (servername: string): Promise<{ status: number, body: string, san: string }> {
    return new Promise((resolve, reject) => {
      https.get({ host: address, port, servername, ca: root, headers: { host: servername }, agent: false }, (res) => {
        let body = ''
        res.on('data', (c) => { body += c })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, san: (res.socket as tls.TLSSocket).getPeerX509Certificate()?.subjectAltName ?? '' }))
      }).on('error', reject)
    })
  }

  /** the names under certificates/ in the storage directory */
  function storedNames (): string[] {
    const dir = path.join(dataDir, 'certificates')
    try { return readdirSync(dir) } catch { return [] }
  }
})
