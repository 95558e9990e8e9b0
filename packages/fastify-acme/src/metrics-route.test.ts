import { CertificateManager, managerMetrics, memoryStorage } from '@fastify-acme/core'
import Fastify, { type FastifyInstance } from 'fastify'
import { createRequire } from 'node:module'
import https from 'node:https'
import { afterEach, describe, expect, it } from 'vitest'
import { listenAndObtain, newSite, pebbleOptions, pebbleRoot } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

/** parse-prometheus-text-format: the text format parser of prom2json, ported to JavaScript. */
interface ParsedFamily {
  name: string
  help: string
  type: string
  metrics: Array<{ value?: string, labels?: Record<string, string>, buckets?: Record<string, string>, count?: string, sum?: string }>
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[]

const TOKEN = 'Bearer metrics-secret'

function get (address: string, port: number, servername: string, ca: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, type: string, body: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host: address, port, path, servername, ca, headers: { host: servername, ...headers }, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }))
    }).on('error', reject)
  })
}

describe('metrics route', () => {
  const apps: FastifyInstance[] = []
  afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())) })

  it('serves valid Prometheus exposition over HTTPS, behind its hook, for a certificate from Pebble', async () => {
    const { address, name } = await newSite('metrics')
    const app = Fastify({ https: acmeHttps() })
    apps.push(app)
    await app.register(fastifyAcme, {
      ...pebbleOptions(address),
      domains: [name],
      metrics: {
        onRequest: async (request, reply) => {
          if (request.headers.authorization !== TOKEN) await reply.code(401).send('unauthorized')
        },
      },
    })
    const port = await listenAndObtain(app, address)
    await app.acme.renew(name, { force: true })
    const root = await pebbleRoot()

    expect((await get(address, port, name, root, '/metrics')).status).toBe(401)
    const res = await get(address, port, name, root, '/metrics', { authorization: TOKEN })
    expect(res.status).toBe(200)
    expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8')

    const families = new Map(parsePrometheus(res.body).map((f) => [f.name, f]))
    for (const f of families.values()) {
      expect(f.name).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/)
      expect(f.help).not.toBe('')
      for (const m of f.metrics) {
        for (const v of [m.value, m.count, m.sum, ...Object.values(m.buckets ?? {})].filter((x) => x !== undefined)) expect(Number.isNaN(Number(v))).toBe(false)
      }
    }
    expect(Object.fromEntries([...families.values()].map((f) => [f.name, f.type]))).toMatchObject({
      acme_certificate_expiry_timestamp_seconds: 'GAUGE',
      acme_certificate_next_renewal_timestamp_seconds: 'GAUGE',
      acme_orders_total: 'COUNTER',
      acme_renewal_failures_total: 'COUNTER',
      acme_lock_wait_seconds: 'HISTOGRAM',
    })
    const [info] = app.acme.list()
    expect(families.get('acme_certificate_expiry_timestamp_seconds')!.metrics).toEqual([{ labels: { name }, value: String(info!.notAfter!.getTime() / 1000) }])
    expect(families.get('acme_certificate_next_renewal_timestamp_seconds')!.metrics).toEqual([
      { labels: { name, reason: info!.renewal!.reason }, value: String(info!.renewal!.at.getTime() / 1000) },
    ])
    expect(families.get('acme_orders_total')!.metrics).toEqual([{ labels: { result: 'success' }, value: '2' }, { labels: { result: 'failure' }, value: '0' }])
    expect(families.get('acme_renewal_failures_total')!.metrics).toEqual([{ value: '0' }])
    const lockWait = families.get('acme_lock_wait_seconds')!.metrics[0]!
    expect(lockWait.count).toBe('2')
    expect(lockWait.buckets!['+Inf']).toBe('2')

    // app.acme stays the CertificateManager; metrics() is core's managerMetrics(app.acme).text()
    expect(app.acme).toBeInstanceOf(CertificateManager)
    expect(app.acme.metrics()).toBe(managerMetrics(app.acme).text())
    expect(app.acme.metrics()).toContain('acme_orders_total{result="success"} 2')
  })

  it('metrics: true serves GET /metrics; no option serves nothing but metrics() still works', async () => {
    const open = Fastify()
    apps.push(open)
    await open.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: { port: false } }, metrics: true })
    const res = await open.inject({ url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('acme_certificates{status="valid"} 0')

    const closed = Fastify()
    apps.push(closed)
    await closed.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: { port: false } } })
    expect((await closed.inject({ url: '/metrics' })).statusCode).toBe(404)
    expect(closed.acme.metrics()).toContain('# TYPE acme_orders_total counter')
  })

  it.each([
    [{ path: 'metrics' }, 'metrics.path'],
    [{ onRequest: 'yes' }, 'metrics.onRequest'],
    [{ onRequest: [] }, 'metrics.onRequest'],
    ['on', 'metrics'],
  ])('refuses metrics: %j', async (metrics, option) => {
    const app = Fastify()
    apps.push(app)
    const err = await app.register(fastifyAcme, { env: false, storage: memoryStorage(), metrics: metrics as never }).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
    expect((err as Error).message).toContain(`"${option}"`)
  })
})
