// `pnpm demo`: a CA, an app, a certificate, HTTPS, and a renewal with no restart and no failed request.
// `pnpm demo --json` prints one JSON line: {"issuer","names","issueMs","serialBefore","serialAfter","requests","failedRequests"}
// `pnpm demo --data <dir>` stores into <dir> and keeps it, for `fastify-acme list --storage <dir>` (the ops CLI)
import { challtestsrvClient, startChalltestsrv, startPebble, uniqueLoopbackAddress, type Challtestsrv, type Pebble } from '@fastify-acme/harness'
import { mkdtempSync, rmSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TLSSocket } from 'node:tls'
import { buildApp } from './app.js'

const json = process.argv.includes('--json')
const dataArg = process.argv.indexOf('--data')
const keptDataDir = dataArg > 0 ? process.argv[dataArg + 1] : undefined
if (dataArg > 0 && !keptDataDir) throw new Error('--data needs a directory')
const VALIDITY_SECONDS = 12
const say = (line: string) => { if (!json) process.stdout.write(`${line}\n`) }
const note = (line: string) => process.stderr.write(`${line}\n`)

interface Ca {
  name: string
  acme: Parameters<typeof buildApp>[0]['acme']
  /** trust for the certificates it issues */
  root: () => Promise<string>
  stop: () => Promise<void>
}

async function startCa (address: string, domain: string): Promise<Ca> {
  let challtestsrv: Challtestsrv | undefined
  let pebble: Pebble | undefined
  try {
    challtestsrv = await startChalltestsrv()
    pebble = await startPebble({ dnsServer: challtestsrv.dnsServer, validitySeconds: VALIDITY_SECONDS })
  } catch (err) {
    await challtestsrv?.stop()
    note(`! Pebble is not available (${(err as Error).message.split('\n')[0]}); using the embedded local CA instead`)
    return {
      name: 'local CA',
      acme: { directoryUrl: 'local', localCa: { leafLifetimeMs: VALIDITY_SECONDS * 1000 }, challenges: { http01: false } },
      root: async () => '', // filled in by the app's manager below
      stop: async () => {},
    }
  }
  await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(domain, [address])
  const p = pebble
  return {
    name: 'Pebble',
    acme: {
      directoryUrl: p.directoryUrl,
      caBundle: p.caBundle,
      termsOfServiceAgreed: true,
      email: 'demo@example.test',
      challenges: { http01: { port: p.httpPort, host: address } },
    },
    root: () => p.rootCertificate(),
    stop: async () => { await p.stop(); await challtestsrv!.stop() },
  }
}

function get (address: string, port: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: address, port, servername, ca, headers: { host: servername }, agent: false, timeout: 5000 }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber ?? ''
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve(serial) : reject(new Error(`HTTP ${res.statusCode}`))))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

async function main () {
  say('fastify-acme demo')
  const address = uniqueLoopbackAddress()
  const domain = 'demo.example.test'
  const ca = await startCa(address, domain)
  say(`  ✓ ${ca.name} started; its certificates live ${VALIDITY_SECONDS} s, so you will see a renewal`)
  const dataDir = keptDataDir ? path.resolve(keptDataDir) : mkdtempSync(path.join(tmpdir(), 'fastify-acme-demo-'))
  const started = performance.now()
  const app = await buildApp({ domains: [domain], dataDir, acme: ca.acme })
  await app.listen({ port: 0, host: address })
  const port = (app.server.address() as { port: number }).port
  say(`  ✓ app listening on https://${domain}:${port} (${address}), data in ${dataDir}`)
  const root = ca.name === 'Pebble' ? await ca.root() : (await app.acme.localRootCertificate())!

  // the first HTTPS response with the fresh certificate
  let serialBefore = ''
  for (;;) {
    try {
      serialBefore = await get(address, port, domain, root)
      break
    } catch {
      if (performance.now() - started > 30_000) throw new Error('no certificate after 30 s')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const issueMs = Math.round(performance.now() - started)
  const [info] = app.acme.list()
  say(`  ✓ certificate from "${info!.issuer!.commonName}" served in ${issueMs} ms (serial ${serialBefore})`)
  say(`  … new HTTPS connections, one after another, until the certificate renews (about ${VALIDITY_SECONDS / 2} s)`)

  let requests = 1
  let failedRequests = 0
  let serialAfter = serialBefore
  const deadline = Date.now() + VALIDITY_SECONDS * 3000
  while (serialAfter === serialBefore && Date.now() < deadline) {
    try {
      serialAfter = await get(address, port, domain, root)
    } catch (err) {
      failedRequests++
      note(`  ! request failed: ${(err as Error).message}`)
    }
    requests++
  }
  const renewed = serialAfter !== serialBefore
  say(renewed
    ? `  ✓ renewed with no restart: serial ${serialBefore} -> ${serialAfter} after ${requests} requests, ${failedRequests} failed`
    : `  ✗ no renewal within ${VALIDITY_SECONDS * 3} s (${requests} requests, ${failedRequests} failed)`)

  await app.close()
  await ca.stop()
  if (keptDataDir) say(`  data kept in ${dataDir}; after pnpm build: node packages/fastify-acme/bin/fastify-acme.js list --storage file://${dataDir}`)
  else rmSync(dataDir, { recursive: true, force: true })
  if (json) {
    process.stdout.write(`${JSON.stringify({ issuer: info!.issuer!.commonName, names: info!.names, issueMs, serialBefore, serialAfter, requests, failedRequests })}\n`)
  }
  process.exitCode = renewed && failedRequests === 0 ? 0 : 1
}

main().catch((err) => {
  note(`demo failed: ${(err as Error).stack ?? err}`)
  process.exitCode = 1
})
