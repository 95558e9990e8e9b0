import acme from 'acme-client'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startAcmeProxy, type AcmeProxy } from './acme-proxy.js'
import { startChalltestsrv, startPebble, type Challtestsrv, type Pebble } from './pebble.js'
import { uniqueLoopbackAddress } from './ports.js'

interface RawResponse { status: number, headers: http.IncomingHttpHeaders, body: string }
interface RawClient {
  api: { apiResourceRequest (resource: string, payload: unknown): Promise<{ status: number, headers: Record<string, string>, data: any }> }
}

type OrderRequest = Parameters<acme.Client['createOrder']>[0]

let challtestsrv: Challtestsrv
let pebble: Pebble
let proxy: AcmeProxy
let responder: http.Server
let responderAddress: string
const keyAuthorizations = new Map<string, string>()
let nameCounter = 0

beforeAll(async () => {
  challtestsrv = await startChalltestsrv()
  pebble = await startPebble({ dnsServer: challtestsrv.dnsServer, validitySeconds: 3600 })
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: pebble.caBundle })
  ;(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0
  responderAddress = uniqueLoopbackAddress()
  responder = http.createServer((req, res) => {
    const token = req.url?.split('/.well-known/acme-challenge/')[1] ?? ''
    const keyAuthorization = keyAuthorizations.get(token)
    res.writeHead(keyAuthorization ? 200 : 404).end(keyAuthorization ?? '')
  })
  await new Promise<void>((resolve) => responder.listen(pebble.httpPort, responderAddress, resolve))
}, 60_000)

afterAll(async () => {
  await new Promise((resolve) => responder?.close(resolve))
  await pebble?.stop()
  await challtestsrv?.stop()
})

beforeEach(async () => {
  proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls })
})

afterEach(async () => {
  await proxy.close()
})

async function newClient () {
  const client = new acme.Client({ directoryUrl: proxy.directoryUrl, accountKey: await acme.crypto.createPrivateEcdsaKey() })
  await client.createAccount({ termsOfServiceAgreed: true })
  return client
}

async function newName () {
  nameCounter += 1
  const name = `proxy-${process.pid}-${nameCounter}.example.test`
  await challtestsrv.addA(name, [responderAddress])
  return name
}

/** Creates an order for `name`, answers HTTP-01 and polls until the order is ready. */
async function readyOrder (client: acme.Client, name: string, extra: Record<string, unknown> = {}) {
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }], ...extra } as OrderRequest)
  for (const authz of await client.getAuthorizations(order)) {
    // Pebble reuses a valid authorization for a name ordered before (at random): nothing to answer
    if (authz.status === 'valid') continue
    const challenge = authz.challenges.find((c) => c.type === 'http-01')
    if (!challenge) throw new Error('no http-01 challenge')
    keyAuthorizations.set(challenge.token, await client.getChallengeKeyAuthorization(challenge))
    await client.completeChallenge(challenge)
  }
  for (let i = 0; i < 100; i++) {
    const current = await client.getOrder(order)
    if (current.status === 'ready') return current
    if (current.status === 'invalid') throw new Error(`order invalid: ${JSON.stringify(current)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('order never became ready')
}

async function issue (client: acme.Client, name: string, extra: Record<string, unknown> = {}) {
  const order = await readyOrder(client, name, extra)
  const [, csr] = await acme.crypto.createCsr({ commonName: name }, await acme.crypto.createPrivateEcdsaKey())
  await client.finalizeOrder(order, csr)
  for (let i = 0; i < 100; i++) {
    const current = await client.getOrder(order)
    if (current.status === 'valid') return { order: current, certificate: await client.getCertificate(current) }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('order never became valid')
}

function raw (url: string, method = 'GET', body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/jose+json' } : {}
    const req = https.request(url, { method, ca: pebble.caBundle, agent: false, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('acme proxy', () => {
  it('advertises ARI and profiles, and relays a whole order with URLs rewritten to the proxy', async () => {
    const directory = JSON.parse((await raw(proxy.directoryUrl)).body)
    expect(directory.renewalInfo).toBe(`${proxy.origin}/renewal-info`)
    expect(Object.keys(directory.meta.profiles)).toEqual(['classic', 'shortlived'])
    expect(directory.newOrder).toBe(`${proxy.origin}/order-plz`)

    const client = await newClient()
    const order = await readyOrder(client, await newName())
    expect(order.status).toBe('ready')
    expect(order.url.startsWith(`${proxy.origin}/my-order/`)).toBe(true)
    expect(order.finalize.startsWith(`${proxy.origin}/finalize-order/`)).toBe(true)
    expect(proxy.count('newOrder')).toBe(1)
    expect(proxy.count('newAccount')).toBe(1)
    expect(proxy.count('challenge')).toBeGreaterThanOrEqual(1)
    expect(proxy.count('order')).toBeGreaterThanOrEqual(1)
    expect(proxy.count('newNonce')).toBeGreaterThanOrEqual(1)
    expect(proxy.requests.every((r) => r.status > 0 && !r.injected && r.resource !== 'other')).toBe(true)
    const [newOrder] = proxy.requests.filter((r) => r.resource === 'newOrder')
    expect(newOrder).toMatchObject({ method: 'POST', status: 201, payload: { identifiers: [{ type: 'dns' }] } })
    expect(newOrder.protected?.url).toBe(`${proxy.origin}/order-plz`)
    const authz = proxy.requests.find((r) => r.resource === 'authz')
    expect(authz?.payload).toBe('')

    const without = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls, profiles: null, host: 'localhost' })
    try {
      expect(without.origin).toMatch(/^https:\/\/localhost:\d+$/)
      const plain = JSON.parse((await raw(without.directoryUrl)).body)
      expect(plain.meta?.profiles).toBeUndefined()
      expect(plain.newNonce).toBe(`${without.origin}/nonce-plz`)
    } finally {
      await without.close()
    }
  })

  it('logs replaces and profile, issues, and answers ARI with a default or a set window', async () => {
    const client = await newClient()
    const name = await newName()
    const first = await issue(client, name, { profile: 'shortlived' })
    expect(first.order).toMatchObject({ profile: 'shortlived' })
    const certId = proxy.certIdOf(first.certificate)
    expect(certId).toMatch(/^[\w-]+\.[\w-]+$/)

    const ari = await raw(`${proxy.origin}/renewal-info/${certId}`)
    expect(ari.status).toBe(200)
    expect(ari.headers['retry-after']).toBe('21600')
    const leaf = new X509Certificate(first.certificate)
    const [notBefore, notAfter] = [Date.parse(leaf.validFrom), Date.parse(leaf.validTo)]
    const lifetime = notAfter - notBefore
    const { suggestedWindow } = JSON.parse(ari.body)
    expect(Date.parse(suggestedWindow.start)).toBe(notBefore + Math.round(lifetime * 2 / 3))
    expect(Date.parse(suggestedWindow.end) - Date.parse(suggestedWindow.start)).toBe(Math.round(lifetime / 10))
    expect(proxy.count('renewalInfo', (r) => r.status === 200)).toBe(1)

    // Pebble 2.4 accepts both fields (and ignores them); the proxy logs them and echoes them in the order.
    const second = await readyOrder(client, name, { replaces: certId, profile: 'classic' })
    expect(second).toMatchObject({ status: 'ready', replaces: certId, profile: 'classic' })
    const orders = proxy.requests.filter((r) => r.resource === 'newOrder')
    expect(orders.map((r) => r.payload)).toMatchObject([{ profile: 'shortlived' }, { replaces: certId, profile: 'classic' }])
    expect(orders.map((r) => r.status)).toEqual([201, 201])

    const start = new Date(Date.now() - 60_000)
    const end = new Date(Date.now() + 60_000)
    proxy.setRenewalInfo(certId, { start, end, explanationURL: 'https://example.test/incident', retryAfterSeconds: 60 })
    const set = await raw(`${proxy.origin}/renewal-info/${certId}`)
    expect(set.headers['retry-after']).toBe('60')
    expect(JSON.parse(set.body)).toEqual({
      suggestedWindow: { start: start.toISOString(), end: end.toISOString() },
      explanationURL: 'https://example.test/incident',
    })

    const unknown = await raw(`${proxy.origin}/renewal-info/AAAA.AAAA`)
    expect(unknown.status).toBe(404)
    expect(unknown.headers['content-type']).toBe('application/problem+json')
    expect(JSON.parse(unknown.body).type).toBe('urn:ietf:params:acme:error:malformed')
    proxy.setRenewalInfo('*', { start: 'not a date', end: 'neither' })
    expect(JSON.parse((await raw(`${proxy.origin}/renewal-info/AAAA.AAAA`)).body).suggestedWindow.start).toBe('not a date')

    await expect(client.createOrder({ identifiers: [{ type: 'dns', value: name }], profile: 'nope' } as OrderRequest))
      .rejects.toThrow(/invalidProfile|not offered/)
  })

  it('computes the RFC 9773 example certID', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ari-certid-'))
    const file = (name: string) => path.join(dir, name)
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=ari ca',
      '-addext', 'subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4')
    openssl('req', ...ec, '-keyout', file('leaf.key'), '-out', file('leaf.csr'), '-subj', '/CN=leaf')
    writeFileSync(file('ext.cnf'), 'authorityKeyIdentifier=keyid:always\n')
    openssl('x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-set_serial', '0x87654321',
      '-days', '1', '-extfile', file('ext.cnf'), '-out', file('leaf.pem'))
    expect(proxy.certIdOf(readFileSync(file('leaf.pem'), 'utf8'))).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE')
  })

  it('injects a 429 with Retry-After and a fresh nonce the client can use', async () => {
    const client = await newClient()
    const name = await newName()
    proxy.inject({ resource: 'newOrder', action: { status: 429, retryAfter: 2 } })
    const api = (client as unknown as RawClient).api
    const limited = await api.apiResourceRequest('newOrder', { identifiers: [{ type: 'dns', value: name }] })
    expect(limited.status).toBe(429)
    expect(limited.headers['retry-after']).toBe('2')
    expect(limited.headers['content-type']).toBe('application/problem+json')
    expect(limited.headers['replay-nonce']).toMatch(/^[\w-]+$/)
    expect(limited.data.type).toBe('urn:ietf:params:acme:error:rateLimited')
    const record = proxy.requests.find((r) => r.resource === 'newOrder')!
    expect(record.answeredAt).toBeGreaterThanOrEqual(record.at)
    expect(record.replyNonce).toBe(limited.headers['replay-nonce'])

    // The nonce came from Pebble, so a request signed with it goes through; the rule was used up.
    const http = (client as unknown as { http: { signedRequest (url: string, payload: unknown, opts: object): Promise<{ status: number }> } }).http
    const ok = await http.signedRequest(`${proxy.origin}/order-plz`, { identifiers: [{ type: 'dns', value: name }] },
      { kid: client.getAccountUrl(), nonce: limited.headers['replay-nonce'] })
    expect(ok.status).toBe(201)
    expect(proxy.requests.filter((r) => r.resource === 'newOrder').map((r) => [r.status, r.injected])).toEqual([[429, true], [201, false]])
  })

  it('injects 503s and dropped connections, honouring method, times and order', async () => {
    const client = await newClient()
    const name = await newName()
    proxy.inject({ resource: 'newOrder', method: 'GET', action: { status: 418 } })
    proxy.inject({ resource: 'newOrder', times: 2, action: { status: 503, detail: 'down for a bit' } })
    proxy.inject({ resource: 'newOrder', action: { drop: true } })
    const api = (client as unknown as RawClient).api
    const payload = { identifiers: [{ type: 'dns', value: name }] }
    for (let i = 0; i < 2; i++) {
      const down = await api.apiResourceRequest('newOrder', payload)
      expect(down.status).toBe(503)
      expect(down.data).toMatchObject({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'down for a bit', status: 503 })
      expect(down.headers['replay-nonce']).toBeTruthy()
    }
    await expect(api.apiResourceRequest('newOrder', payload)).rejects.toThrow()
    expect(proxy.requests.filter((r) => r.resource === 'newOrder').map((r) => [r.status, r.injected]))
      .toEqual([[503, true], [503, true], [0, true]])
    expect((await api.apiResourceRequest('newOrder', payload)).status).toBe(201)

    proxy.inject({ resource: 'directory', times: Infinity, action: { drop: true } })
    await expect(raw(proxy.directoryUrl)).rejects.toThrow(/socket hang up|ECONNRESET/)
    await expect(raw(proxy.directoryUrl)).rejects.toThrow(/socket hang up|ECONNRESET/)
    proxy.clearFaults()
    expect((await raw(proxy.directoryUrl)).status).toBe(200)

    proxy.inject({ resource: 'directory', action: { delayMs: 300 } })
    const started = Date.now()
    expect((await raw(proxy.directoryUrl)).status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    expect(proxy.requests.at(-1)).toMatchObject({ resource: 'directory', status: 200, injected: false })
  })

  it('answers with an arbitrary respond fault', async () => {
    proxy.inject({ resource: 'directory', probability: 0, times: Infinity, action: { status: 500 } })
    proxy.inject({ resource: 'directory', action: { respond: { status: 200, headers: { 'content-type': 'application/json' }, body: '{"garbage' } } })
    const garbage = await raw(proxy.directoryUrl)
    expect(garbage).toMatchObject({ status: 200, body: '{"garbage' })
    expect(garbage.headers['content-type']).toBe('application/json')
    expect(proxy.requests.at(-1)).toMatchObject({ resource: 'directory', status: 200, injected: true })
    expect(JSON.parse((await raw(proxy.directoryUrl)).body).renewalInfo).toBe(`${proxy.origin}/renewal-info`)
  })
})
