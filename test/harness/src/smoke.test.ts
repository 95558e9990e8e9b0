import { PutObjectCommand, S3Client, CreateBucketCommand } from '@aws-sdk/client-s3'
import acme from 'acme-client'
import http from 'node:http'
import https from 'node:https'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAcmeProxy, type AcmeProxy } from './acme-proxy.js'
import { getText } from './http.js'
import { challtestsrvClient } from './pebble.js'
import { uniqueLoopbackAddress } from './ports.js'
import { services } from './services.js'

/*
 * Each service the global setup started is real: these talk to them as a client would.
 * acme-client's axios is process-global; setting trust on it here is fine in a test file
 * (the product never does this: core gives each manager its own transport).
 */
describe('harness services are real', () => {
  const { pebble, challtestsrv, redis, s3 } = services()
  const keyAuthorizations = new Map<string, string>()
  let responder: http.Server
  let address: string
  let proxy: AcmeProxy

  beforeAll(async () => {
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: pebble.caBundle })
    address = uniqueLoopbackAddress()
    responder = http.createServer((req, res) => {
      const key = keyAuthorizations.get(req.url?.split('/').pop() ?? '')
      res.writeHead(key ? 200 : 404).end(key ?? '')
    })
    await new Promise<void>((resolve) => responder.listen(pebble.httpPort, address, resolve))
    proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls })
  })

  afterAll(async () => {
    await proxy?.close()
    await new Promise((resolve) => responder?.close(resolve))
  })

  async function orderUntilReady (directoryUrl: string) {
    const client = new acme.Client({ directoryUrl, accountKey: await acme.crypto.createPrivateEcdsaKey() })
    const account = await client.createAccount({ termsOfServiceAgreed: true })
    expect(account.status).toBe('valid')
    const name = `smoke-${process.pid}-${Math.random().toString(36).slice(2)}.example.test`
    await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(name, [address])
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] })
    for (const authz of await client.getAuthorizations(order)) {
      const challenge = authz.challenges.find((c) => c.type === 'http-01')!
      keyAuthorizations.set(challenge.token, await client.getChallengeKeyAuthorization(challenge))
      await client.completeChallenge(challenge)
    }
    for (let i = 0; i < 50; i++) {
      const current = await client.getOrder(order)
      if (current.status !== 'pending') return current.status
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return 'pending'
  }

  it('registers an ACME account on Pebble and gets an order to "ready" (HTTP-01 validated)', async () => {
    expect(await orderUntilReady(pebble.directoryUrl)).toBe('ready')
  })

  it('does the same through the ACME proxy, which counts the order', async () => {
    expect(await orderUntilReady(proxy.directoryUrl)).toBe('ready')
    expect(proxy.count('newOrder')).toBe(1)
  })

  it('sees a 429 injected by the proxy with its Retry-After', async () => {
    proxy.inject({ resource: 'directory', action: { status: 429, retryAfter: 7 } })
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      https.get(proxy.directoryUrl, { ca: pebble.caBundle }, resolve).on('error', reject))
    res.resume()
    expect(res.statusCode).toBe(429)
    expect(res.headers['retry-after']).toBe('7')
    expect(JSON.parse(await getText(proxy.directoryUrl, pebble.caBundle)).renewalInfo).toMatch(/renewal-info$/)
  })

  it('round-trips a value through redis-server', async () => {
    const client = createClient({ url: redis.url })
    await client.connect()
    const key = `smoke:${process.pid}`
    await client.set(key, 'hello', { PX: 10_000 })
    expect(await client.get(key)).toBe('hello')
    expect(await client.sendCommand(['INFO', 'server'])).toMatch(/redis_version:/)
    await client.quit()
  })

  it('refuses a second If-None-Match: * PUT of the same key on the S3 server with 412', async () => {
    const client = new S3Client(s3)
    const Bucket = `smoke-${process.pid}`
    await client.send(new CreateBucketCommand({ Bucket }))
    const put = () => client.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: 'x', IfNoneMatch: '*' }))
    await put()
    await expect(put()).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } })
    client.destroy()
  })
})
