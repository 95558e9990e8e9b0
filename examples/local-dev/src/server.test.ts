import { uniqueLoopbackAddress } from '@fastify-acme/harness'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const server = fileURLToPath(new URL('./server.ts', import.meta.url))

interface Started { child: ChildProcess, url: string, host: string, port: number, rootFile: string }

/** Runs `pnpm start` (src/server.ts) as a real process and waits for its one JSON line. */
function start (env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', server], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr!.on('data', (c) => { err += c })
    child.stdout!.on('data', (c) => {
      out += c
      const line = out.split('\n')[0]
      if (out.includes('\n')) resolve({ child, ...JSON.parse(line!) })
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening\n${err}`)))
  })
}

function stop (child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit')
    child.once('exit', (code) => resolve(code))
    child.kill('SIGTERM')
  })
}

/** GET / with SNI and Host `servername`, trusting only `ca`. */
function get (host: string, port: number, servername: string, ca: string): Promise<{ status: number, body: string, issuer: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host, port, servername, ca, headers: { host: servername }, agent: false }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, issuer: (res.socket as TLSSocket).getPeerX509Certificate()?.issuer ?? '' }))
    }).on('error', reject)
  })
}

describe('examples/local-dev', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'example-local-dev-'))
  const children: ChildProcess[] = []
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('serves HTTPS from the local CA: a client that trusts the written root connects', async () => {
    const host = uniqueLoopbackAddress()
    const first = await start({ HOST: host, PORT: '0', DATA_DIR: dataDir, DOMAINS: 'app.localhost,api.localhost' })
    children.push(first.child)
    expect(first.url).toBe(`https://app.localhost:${first.port}/`)
    const root = readFileSync(first.rootFile, 'utf8')
    expect(root).toContain('-----BEGIN CERTIFICATE-----')

    const res = await get(host, first.port, 'app.localhost', root)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ hello: 'app.localhost', secure: true })
    expect(res.issuer).toContain('fastify-acme Local Authority')
    // one certificate carries both names
    expect((await get(host, first.port, 'api.localhost', root)).status).toBe(200)
    // a client that does not trust the root refuses the connection
    await expect(get(host, first.port, 'app.localhost', '')).rejects.toThrow()
    expect(await stop(first.child)).toBe(0)

    // a restart keeps the root: trust it once
    const second = await start({ HOST: host, PORT: '0', DATA_DIR: dataDir, DOMAINS: 'app.localhost,api.localhost' })
    children.push(second.child)
    expect(readFileSync(second.rootFile, 'utf8')).toBe(root)
    expect((await get(host, second.port, 'app.localhost', root)).status).toBe(200)
    expect(await stop(second.child)).toBe(0)
  })
})
