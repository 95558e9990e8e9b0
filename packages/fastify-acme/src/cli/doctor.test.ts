import { createCertificateManager } from '@fastify-acme/core'
import { freePort } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import http from 'node:http'
import net from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, uniqueLoopbackAddress } from '../../test/fixtures.js'
import { cli, json } from './cli.test-run.js'

describe('fastify-acme doctor and renew --http-port', () => {
  const { pebble, challtestsrv } = services()
  const work = mkdtempSync(path.join(tmpdir(), 'fastify-acme-doctor-'))
  const storage = `file://${path.join(work, 'data')}`
  const caFile = path.join(work, 'pebble-ca.pem')
  const address = uniqueLoopbackAddress()
  let name = ''
  let serial = ''
  let busy: net.Server

  beforeAll(async () => {
    writeFileSync(caFile, pebble.caBundle)
    name = await pointName(address, 'doctor')
    // obtain with a bare CertificateManager and its own HTTP-01 server, then stop both
    const manager = createCertificateManager({
      directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: fsStorage({ dir: path.join(work, 'data') }),
    })
    const server = http.createServer((req, res) => {
      manager.respondHttp01(req.headers.host, (req.url ?? '').split('/').pop() ?? '').then((body) => res.writeHead(body ? 200 : 404).end(body ?? ''))
    })
    await new Promise<void>((resolve) => server.listen(pebble.httpPort, address, resolve))
    serial = (await manager.obtain([name])).serial!
    await manager.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    busy = net.createServer((socket) => socket.end())
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  }, 60_000)
  afterAll(async () => {
    busy?.close()
    rmSync(work, { recursive: true, force: true })
  })

  it('doctor --json: ports, DNS of the stored name, storage round trip and the CA all ok (exit 0)', async () => {
    const free = await freePort()
    const inUse = (busy.address() as net.AddressInfo).port
    const run = await cli([
      'doctor', '--json', '--storage', storage, '--ports', `${free},${inUse}`, '--host', '127.0.0.1',
      '--dns-server', challtestsrv.dnsServer, '--timeout-ms', '3000',
    ], { env: { ACME_DIRECTORY_URL: pebble.directoryUrl, ACME_CA_BUNDLE: caFile, ACME_EAB_KID: 'kid-1', ACME_EAB_HMAC_KEY: 'c2VjcmV0LWhtYWMta2V5LXZhbHVl' } })
    const doc = json(run)
    const byName = Object.fromEntries((doc.checks as Array<{ name: string }>).map((c) => [c.name, c]))
    expect(byName.storage).toMatchObject({ status: 'ok', details: { certificates: 1 } })
    expect(byName[`ca:${pebble.directoryUrl}`]).toMatchObject({ status: 'ok', details: { ari: false, externalAccountRequired: false } })
    expect(byName[`dns:${name}`]).toMatchObject({ status: 'ok', details: { addresses: [address] } })
    expect(byName[`port:${free}`]).toMatchObject({ status: 'ok', message: expect.stringContaining('free') })
    expect(byName[`port:${inUse}`]).toMatchObject({ status: 'ok', message: expect.stringContaining('in use and accepts connections') })
    expect(doc.ok).toBe(true)
    expect(run.code).toBe(0)
    expect(run.stdout + run.stderr).not.toContain('c2VjcmV0LWhtYWMta2V5LXZhbHVl')
  })

  it('doctor finds problems (exit 3): an untrusted CA, a name without DNS answers', async () => {
    const run = await cli([
      'doctor', '--json', '--storage', storage, '--ports', String(await freePort()), '--dns-server', '127.0.0.1:1', '--timeout-ms', '500',
    ], { env: { ACME_DIRECTORY_URL: pebble.directoryUrl } })
    expect(run.code).toBe(3)
    const doc = json(run)
    expect(doc.ok).toBe(false)
    const byName = Object.fromEntries((doc.checks as Array<{ name: string }>).map((c) => [c.name, c]))
    expect(byName[`ca:${pebble.directoryUrl}`]).toMatchObject({ status: 'fail', details: { code: 'ERR_ACME_CA_TLS' }, message: expect.stringContaining('--ca-bundle') })
    expect(byName[`dns:${name}`]).toMatchObject({ status: 'fail' })
    expect(byName.storage).toMatchObject({ status: 'ok' })

    const text = await cli(['doctor', '--storage', storage, '--ports', String(await freePort()), '--dns-server', '127.0.0.1:1', '--timeout-ms', '500'], { env: { ACME_DIRECTORY_URL: pebble.directoryUrl } })
    expect(text.code).toBe(3)
    expect(text.stdout).toMatch(/^FAIL {2}ca:/m)
    expect(text.stdout).toMatch(/problem\(s\) found/)
  })

  it('renew --force --http-port answers HTTP-01 itself when no app shares the storage', async () => {
    const run = await cli(['renew', name, '--force', '--json', '--storage', storage, '--http-port', String(pebble.httpPort), '--http-host', address], {
      env: { ACME_CA_BUNDLE: caFile }, // the CA comes from the stored certificate
    })
    expect(run.code, run.stderr).toBe(0)
    const doc = json(run)
    expect(doc).toMatchObject({ ok: true, renewed: true, serialBefore: serial })
    expect(doc.serialAfter).not.toBe(serial)
  })
})
