import { challtestsrvClient, getText, startAcmeProxy, uniqueLoopbackAddress, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import https from 'node:https'
import type { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const server = fileURLToPath(new URL('./server.ts', import.meta.url))

/** One `pnpm start` process, with the pino lines it logged so far. */
interface Instance { child: ChildProcess, address: string, logs: Array<Record<string, any>>, port: Promise<number> }

function startInstance (address: string, env: Record<string, string>): Instance {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', server], {
    env: { ...process.env, ...env, HOST: address, PORT: '0', ACME_HTTP_HOST: address },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, any>> = []
  let stderr = ''
  let buffer = ''
  child.stderr!.on('data', (c) => { stderr += c })
  const port = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      buffer += chunk
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, newline))
        buffer = buffer.slice(newline + 1)
        logs.push(line)
        const listening = /^Server listening at https:\/\/[^:]+:(\d+)$/.exec(line.msg ?? '')
        if (listening) resolve(Number(listening[1]))
      }
    })
    child.once('exit', (code) => reject(new Error(`instance at ${address} exited with ${code}\n${stderr}`)))
  })
  return { child, address, logs, port }
}

async function until (what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function get (host: string, port: number, servername: string, ca: string): Promise<{ status: number, body: string, serial: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host, port, servername, ca, headers: { host: servername }, agent: false }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial: (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber ?? '' }))
    }).on('error', reject)
  })
}

describe('examples/redis-cluster', () => {
  const { pebble, challtestsrv, redis } = services()
  let proxy: AcmeProxy
  const instances: Instance[] = []

  beforeAll(async () => {
    // a counting proxy in front of Pebble: it sees every request the cluster sends to the CA
    proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls })
  })
  afterAll(async () => {
    await Promise.all(instances.map((i) => new Promise<void>((resolve) => {
      if (i.child.exitCode !== null) return resolve()
      i.child.once('exit', () => resolve())
      i.child.kill('SIGTERM')
    })))
    await proxy?.close()
  })

  it('three processes on one Redis: one order reaches the CA, and every process serves the certificate', async () => {
    const addresses = [uniqueLoopbackAddress(), uniqueLoopbackAddress(), uniqueLoopbackAddress()]
    const domain = `cluster-${process.pid}.example.test`
    // the CA validates at the second process, whichever process places the order (any of them, under the Redis lock)
    await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(domain, [addresses[1]!])
    const env = {
      REDIS_URL: redis.url,
      REDIS_NAMESPACE: `example-cluster-${randomUUID()}`,
      ACME_DOMAINS: domain,
      ACME_DIRECTORY_URL: proxy.directoryUrl,
      ACME_CA_BUNDLE: pebble.caBundle,
      ACME_TERMS_OF_SERVICE_AGREED: 'true',
      ACME_EMAIL: 'ops@example.test',
      ACME_HTTP_PORT: String(pebble.httpPort),
    }
    // The process the CA validates at listens first: an instance orders within ~100 ms of its
    // start, and the CA must not reach for a process that is not up yet.
    const validating = startInstance(addresses[1]!, env)
    await validating.port
    instances.push(startInstance(addresses[0]!, env), validating, startInstance(addresses[2]!, env))
    const ports = await Promise.all(instances.map((i) => i.port))

    const eventsOf = (i: Instance, event: string) => i.logs.filter((l) => l.event === event)
    await until('every process to serve a certificate', () => instances.every((i) => eventsOf(i, 'updated').length > 0))

    expect(proxy.count('newOrder')).toBe(1)
    expect(proxy.count('newAccount')).toBe(1)
    expect(instances.flatMap((i) => eventsOf(i, 'obtained'))).toHaveLength(1)
    const sources = instances.map((i) => eventsOf(i, 'obtained').length > 0 ? 'order' : 'storage').sort()
    expect(sources).toEqual(['order', 'storage', 'storage'])

    const root = await getText(`${pebble.managementUrl}/roots/0`, pebble.caBundle)
    const served = await Promise.all(instances.map((i, n) => get(i.address, ports[n]!, domain, root)))
    expect(served.map((s) => s.status)).toEqual([200, 200, 200])
    expect(new Set(served.map((s) => s.serial)).size).toBe(1)
    expect(new Set(served.map((s) => JSON.parse(s.body).pid)).size).toBe(3)
  })
})
