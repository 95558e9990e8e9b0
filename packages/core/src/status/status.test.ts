import { services } from '@fastify-acme/harness/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { createCertificateManager } from '../manager/manager.js'
import type { CertificateInfo } from '../manager/manager.js'
import { memoryStorage } from '../storage/memory.js'
import { managerEventLog } from './event-log.js'
import { findStoredBundle, readStoredCertificates } from './inventory.js'
import { renderStatusPage } from './page.js'

const DAY = 86_400_000

describe('status page HTML', () => {
  const now = new Date('2030-01-10T00:00:00Z')
  const valid: CertificateInfo = {
    names: ['a.example.com', 'www.a.example.com'],
    status: 'valid',
    issuer: { key: 'ca-dir', commonName: 'Test CA' },
    serial: 'abc123',
    notBefore: new Date(now.getTime() - 9 * DAY),
    notAfter: new Date(now.getTime() + 81 * DAY),
    renewal: { at: new Date(now.getTime() + 51 * DAY), reason: 'ari' },
    ari: { window: { start: new Date(now.getTime() + 50 * DAY).toISOString(), end: new Date(now.getTime() + 52 * DAY).toISOString() }, selectedTime: new Date(now.getTime() + 51 * DAY).toISOString(), nextCheck: now.toISOString() },
    onDemand: false,
  }
  const failing: CertificateInfo = {
    names: ['b.example.com'],
    status: 'missing',
    lastError: { code: 'ERR_ACME_CHALLENGE_FAILED', message: 'connection refused <script>alert(1)</script>', at: new Date(now.getTime() - 60_000) },
    nextAttemptAt: new Date(now.getTime() + 60_000),
    onDemand: false,
  }

  it('draws issued, ARI window, selected renewal time, now and expiry in time order', () => {
    const html = renderStatusPage({ certificates: [valid], events: [], now })
    const x = (cls: string) => Number(new RegExp(`class="${cls}" x1="([\\d.]+)"`).exec(html)?.[1])
    expect(x('marker marker-issued')).toBeLessThan(x('marker marker-now'))
    expect(x('marker marker-now')).toBeLessThan(x('marker marker-renewal'))
    expect(x('marker marker-renewal')).toBeLessThan(x('marker marker-expiry'))
    expect(html).toContain('data-kind="ari"')
    expect(html).toContain('<time datetime="2030-03-01T00:00:00.000Z">2030-03-01 00:00 UTC</time>')
    expect(html).toContain('data-state="ok"')
  })

  it('escapes every value, loads nothing, and puts trouble first', () => {
    const html = renderStatusPage({ certificates: [valid, failing], events: [], now, title: 'Ops & <Co>' })
    expect(html).not.toContain('<script>')
    expect(html).toContain('connection refused &lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).toContain('<title>Ops &amp; &lt;Co&gt;</title>')
    expect(html).not.toMatch(/\b(src|href)=/)
    expect(html).not.toMatch(/url\(/)
    expect(html.indexOf('data-name="b.example.com"')).toBeLessThan(html.indexOf('data-name="a.example.com"'))
    expect(html).toContain('<meta http-equiv="refresh" content="60">')
    expect(renderStatusPage({ certificates: [], events: [], refreshSeconds: false })).not.toContain('http-equiv="refresh"')
  })
})

describe('event log and stored certificates against Pebble', () => {
  const { pebble } = services()
  const cleanups: Array<() => Promise<void>> = []
  afterAll(async () => { for (const c of cleanups.reverse()) await c() })

  it('keeps the newest events in a bounded ring, without keys; reads storage like an operator', async () => {
    const storage = memoryStorage()
    const manager = createCertificateManager({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage })
    const http = await serveHttp01(manager.http01)
    cleanups.push(async () => { await manager.close(); await http.close() })
    const log = managerEventLog(manager, { size: 5 })
    expect(managerEventLog(manager)).toBe(log)
    const name = await pointName(http.address, 'status')
    const other = await pointName(http.address, 'status-www')
    await manager.manage([name, other])
    expect(log.entries().map((e) => e.type)).toEqual(['obtained', 'updated', 'obtaining', 'locked'])
    await manager.renew(name, { force: true })
    const entries = log.entries()
    expect(entries.map((e) => e.type)).toEqual(['renewed', 'updated', 'obtaining', 'locked', 'obtained'])
    expect(entries[0]).toMatchObject({ names: [name, other], serial: manager.list()[0]!.serial })
    expect(JSON.stringify(entries)).not.toContain('PRIVATE KEY')

    const [stored] = await readStoredCertificates(storage)
    expect(stored).toMatchObject({ primary: name, names: [name, other], status: 'valid', serial: manager.list()[0]!.serial, failures: 0, renewal: { reason: 'ratio' } })
    expect(JSON.stringify(stored)).not.toContain('PRIVATE KEY')
    expect((await findStoredBundle(storage, other))?.serial).toBe(stored!.serial)
    expect(await findStoredBundle(storage, 'nothing.example.test')).toBeNull()
    log.close()
  })
})
