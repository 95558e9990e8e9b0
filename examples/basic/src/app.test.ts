import { challtestsrvClient, getText, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { buildApp } from './app.js'

describe('examples/basic', () => {
  it('gets a certificate from Pebble, keeps it on disk (0600/0700) and serves HTTPS', async () => {
    const { pebble, challtestsrv } = services()
    const address = uniqueLoopbackAddress()
    const domain = `basic-${process.pid}.example.test`
    await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(domain, [address])
    const dataDir = mkdtempSync(path.join(tmpdir(), 'example-basic-'))
    const app = await buildApp({
      domains: [domain],
      dataDir,
      acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, env: false, challenges: { http01: { port: pebble.httpPort, host: address } } },
    })
    try {
      const obtained = new Promise((resolve) => app.acme.once('obtained', resolve))
      await app.listen({ port: 0, host: address })
      await obtained
      const { port } = app.server.address() as { port: number }
      const ca = await getText(`${pebble.managementUrl}/roots/0`, pebble.caBundle)
      const body = await new Promise<string>((resolve, reject) => {
        https.get({ host: address, port, servername: domain, ca, headers: { host: domain } }, (res) => {
          let text = ''
          res.on('data', (c) => { text += c })
          res.on('end', () => resolve(text))
        }).on('error', reject)
      })
      expect(JSON.parse(body)).toEqual({ hello: domain })
      const files = walk(dataDir)
      expect(files.some((f) => f.endsWith('bundle.json'))).toBe(true)
      for (const f of files) expect(statSync(f).mode & 0o777).toBe(statSync(f).isDirectory() ? 0o700 : 0o600)
    } finally {
      await app.close()
    }
  })

  it('`pnpm demo --json` prints one JSON line: Pebble issuer, a renewal with a new serial, 0 failed requests; `fastify-acme list --json` reads its storage', async () => {
    const data = mkdtempSync(path.join(tmpdir(), 'demo-data-'))
    const stdout = await run(fileURLToPath(new URL('./demo.ts', import.meta.url)), ['--json', '--data', data])
    const lines = stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    const result = JSON.parse(lines[0]!)
    expect(Object.keys(result).sort()).toEqual(['failedRequests', 'issueMs', 'issuer', 'names', 'requests', 'serialAfter', 'serialBefore'])
    expect(result.issuer).toContain('Pebble')
    expect(result.serialAfter).not.toBe(result.serialBefore)
    expect(result.failedRequests).toBe(0)
    expect(result.requests).toBeGreaterThan(1)

    const list = JSON.parse(await run(fileURLToPath(new URL('../../../packages/fastify-acme/src/cli/main.ts', import.meta.url)), ['list', '--json', '--storage', `file://${data}`]))
    expect(JSON.stringify(list)).toContain('demo.example.test')
    expect(JSON.stringify(list)).toContain(result.serialAfter.toLowerCase())
    rmSync(data, { recursive: true, force: true })
  })
})

function run (script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--conditions=source', '--import', 'tsx', script, ...args], { timeout: 60_000 }, (err, out, errOut) => {
      if (err) reject(new Error(`${err.message}\n${errOut}`))
      else resolve(out)
    })
  })
}

function walk (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name)
    return e.isDirectory() ? [full, ...walk(full)] : [full]
  })
}
