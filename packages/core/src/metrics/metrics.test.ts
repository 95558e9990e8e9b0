import { services } from '@fastify-acme/harness/vitest'
import { Registry } from 'prom-client'
import { afterAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { createCertificateManager, type CertificateManager } from '../manager/manager.js'
import type { Storage } from '../storage/contract.js'
import { LockNames } from '../storage/keys.js'
import { memoryStorage } from '../storage/memory.js'
import { escapeHelp, escapeLabelValue, formatSampleValue, CumulativeHistogram, renderExposition } from './exposition.js'
import { managerMetrics } from './manager-metrics.js'
import { registerPromClient } from './prom-client.js'

describe('Prometheus text exposition', () => {
  it.each([
    ['plain', 'plain'],
    ['back\\slash', 'back\\\\slash'],
    ['say "hi"', 'say \\"hi\\"'],
    ['two\nlines', 'two\\nlines'],
    ['*.example.com', '*.example.com'],
    ['\\"\n', '\\\\\\"\\n'],
  ])('escapes the label value %j', (raw, escaped) => {
    expect(escapeLabelValue(raw)).toBe(escaped)
  })

  it('escapes HELP (backslash, line feed) but keeps double quotes', () => {
    expect(escapeHelp('a "b" \\ c\nd')).toBe('a "b" \\\\ c\\nd')
  })

  it('writes Go float syntax for special values', () => {
    expect([Infinity, -Infinity, NaN, 0, 1.5, 1_700_000_000.123].map(formatSampleValue)).toEqual(['+Inf', '-Inf', 'NaN', '0', '1.5', '1700000000.123'])
  })

  it('renders HELP, TYPE and samples, and refuses bad or duplicate names', () => {
    expect(renderExposition([{ name: 'x_total', help: 'X.', type: 'counter', samples: [{ labels: { a: 'q"' }, value: 2 }] }]))
      .toBe('# HELP x_total X.\n# TYPE x_total counter\nx_total{a="q\\""} 2\n')
    expect(() => renderExposition([{ name: '1bad', help: '', type: 'gauge', samples: [] }])).toThrow(/metric name/)
    expect(() => renderExposition([{ name: 'a', help: '', type: 'gauge', samples: [] }, { name: 'a', help: '', type: 'gauge', samples: [] }])).toThrow(/duplicate/)
    expect(() => renderExposition([{ name: 'a', help: '', type: 'gauge', samples: [{ labels: { 'b-c': 'x' }, value: 1 }] }])).toThrow(/label name/)
  })

  it('keeps cumulative histogram buckets with +Inf equal to the count', () => {
    const h = new CumulativeHistogram([0.1, 1])
    for (const v of [0.05, 0.5, 0.5, 7]) h.observe(v)
    expect(h.snapshot()).toEqual({ buckets: [{ le: 0.1, count: 1 }, { le: 1, count: 3 }, { le: Infinity, count: 4 }], sum: 8.05, count: 4 })
    expect(renderExposition([{ name: 'h', help: 'H.', type: 'histogram', samples: h.samples() }]).split('\n').slice(2, 7))
      .toEqual(['h_bucket{le="0.1"} 1', 'h_bucket{le="1"} 3', 'h_bucket{le="+Inf"} 4', 'h_sum 8.05', 'h_count 4'])
  })
})

describe('manager metrics against Pebble', () => {
  const { pebble } = services()
  const cleanups: Array<() => Promise<void>> = []
  afterAll(async () => { for (const c of cleanups.reverse()) await c() })

  /** Memory storage whose puts fail while `broken` is set: the pre-order storage check then fails. */
  function breakableStorage (): Storage & { broken: boolean } {
    const inner = memoryStorage()
    const s = Object.assign(Object.create(inner) as Storage, { broken: false }) as Storage & { broken: boolean }
    s.put = (key, value) => s.broken ? Promise.reject(new Error('disk full')) : inner.put(key, value)
    return s
  }

  async function pebbleManager (storage: Storage): Promise<{ manager: CertificateManager, name: string }> {
    const manager = createCertificateManager({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage })
    const http = await serveHttp01(manager.http01)
    cleanups.push(async () => { await manager.close(); await http.close() })
    return { manager, name: await pointName(http.address, 'metrics') }
  }

  it('counts orders, renewal failures and lock waits, and reports each certificate\'s times; prom-client agrees', async () => {
    const storage = breakableStorage()
    const { manager, name } = await pebbleManager(storage)
    const metrics = managerMetrics(manager)
    expect(managerMetrics(manager)).toBe(metrics)
    const registry = new Registry()
    const unregister = await registerPromClient(manager, registry)

    await manager.manage([name])
    // hold the issuance lock for a while, so the forced renewal waits for it
    const held = await storage.lock(LockNames.issue(name), { ttlMs: 10_000 })
    setTimeout(() => { held.release().catch(() => {}) }, 300)
    await manager.renew(name, { force: true })
    storage.broken = true
    await expect(manager.renew(name, { force: true })).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE' })
    storage.broken = false

    const [info] = manager.list()
    const text = metrics.text()
    const line = (prefix: string) => text.split('\n').find((l) => l.startsWith(prefix))
    expect(line(`acme_certificate_expiry_timestamp_seconds{name="${name}"} `)).toBe(`acme_certificate_expiry_timestamp_seconds{name="${name}"} ${info!.notAfter!.getTime() / 1000}`)
    expect(line(`acme_certificate_next_renewal_timestamp_seconds{name="${name}",reason="ratio"} `)).toBe(
      `acme_certificate_next_renewal_timestamp_seconds{name="${name}",reason="ratio"} ${info!.renewal!.at.getTime() / 1000}`)
    expect(line('acme_orders_total{result="success"}')).toBe('acme_orders_total{result="success"} 2')
    expect(line('acme_orders_total{result="failure"}')).toBe('acme_orders_total{result="failure"} 1')
    expect(line('acme_renewal_failures_total')).toBe('acme_renewal_failures_total 1')
    expect(line(`acme_certificate_last_failure_timestamp_seconds{name="${name}",code="ERR_ACME_STORAGE"}`)).toBeDefined()
    expect(line('acme_certificates{status="valid"}')).toBe('acme_certificates{status="valid"} 1')
    expect(line('acme_lock_wait_seconds_count')).toBe('acme_lock_wait_seconds_count 2')
    expect(line('acme_lock_wait_seconds_bucket{le="0.1"}')).toBe('acme_lock_wait_seconds_bucket{le="0.1"} 1') // the first order did not wait
    expect(line('acme_lock_wait_seconds_bucket{le="1"}')).toBe('acme_lock_wait_seconds_bucket{le="1"} 2') // the renewal waited ~300 ms
    expect(Number(line('acme_lock_wait_seconds_sum')!.split(' ')[1])).toBeGreaterThanOrEqual(0.25)
    expect(line('acme_order_attempts_total{issuer=')).toMatch(/^acme_order_attempts_total\{issuer="127\.0\.0\.1-\d+-dir"\} 2$/)
    for (const family of ['acme_certificates', 'acme_orders_total', 'acme_lock_wait_seconds']) {
      expect(text).toContain(`# HELP ${family} `)
      expect(text).toContain(`# TYPE ${family} `)
    }

    // prom-client, registered before the first event, sees the same values
    const json = await registry.getMetricsAsJSON()
    const value = (metric: string, labels: Record<string, string | number> = {}) => json.find((m) => m.name === metric)?.values
      .find((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === String(l)) && (!('metricName' in v) || v.metricName === metric || labels.le !== undefined))?.value
    expect(value('acme_certificate_expiry_timestamp_seconds', { name })).toBe(info!.notAfter!.getTime() / 1000)
    expect(value('acme_orders_total', { result: 'success' })).toBe(2)
    expect(value('acme_orders_total', { result: 'failure' })).toBe(1)
    expect(value('acme_renewal_failures_total')).toBe(1)
    expect(value('acme_lock_wait_seconds', { le: 0.1 })).toBe(1)
    expect(value('acme_lock_wait_seconds', { le: 1 })).toBe(2)
    expect(await registry.metrics()).toContain('# TYPE acme_certificate_next_renewal_timestamp_seconds gauge')

    // registering twice fails whole, and unregistering frees every name
    await expect(registerPromClient(manager, registry)).rejects.toThrow(/already been registered/)
    unregister()
    expect(await registry.getMetricsAsJSON()).toEqual([])
    metrics.close()
    expect(managerMetrics(manager)).not.toBe(metrics)
  })

  it('refuses a promClient option that is not prom-client', async () => {
    const { manager } = await pebbleManager(memoryStorage())
    await expect(registerPromClient(manager, new Registry(), { promClient: {} })).rejects.toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
  })
})
