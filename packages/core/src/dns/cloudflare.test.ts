import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startFakeCloudflare, type FakeCloudflare } from '../../test/cloudflare-api.js'
import { isAcmeError, type AcmeError } from '../errors.js'
import { cloudflareProvider } from './cloudflare.js'

// Against a local server implementing the documented Cloudflare API v4 shapes, not the live API.
describe('cloudflareProvider against a local Cloudflare API v4 server', () => {
  const token = randomBytes(20).toString('hex')
  let cf: FakeCloudflare
  beforeAll(async () => { cf = await startFakeCloudflare(token, ['example.com', 'sub.example.com', 'other.org']) })
  afterAll(async () => { await cf?.close() })
  beforeEach(() => { cf.records.length = 0; cf.requests.length = 0 })

  const provider = (extra: Record<string, unknown> = {}) => cloudflareProvider({ apiToken: token, baseUrl: cf.baseUrl, ...extra })
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure') }, (err: AcmeError) => err)

  it('creates TXT records in the closest zone, several at one name, and deletes exactly one value', async () => {
    const p = provider()
    cf.records.push({ id: 'keep', zone_id: cf.zones.get('sub.example.com')!, name: '_acme-challenge.www.sub.example.com', type: 'TXT', content: '"site-verification=abc"', ttl: 3600 })
    await Promise.all([p.present('_acme-challenge.www.sub.example.com', 'one'), p.present('_acme-challenge.www.sub.example.com', 'two')])
    expect(cf.txt('_acme-challenge.www.sub.example.com').sort()).toEqual(['one', 'site-verification=abc', 'two'])
    expect(cf.records.every((r) => r.zone_id === cf.zones.get('sub.example.com'))).toBe(true)
    expect(cf.records.find((r) => r.content === '"one"')).toMatchObject({ ttl: 60, type: 'TXT' })
    expect(cf.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true)

    await p.present('_acme-challenge.www.sub.example.com', 'one') // identical record (81058) is success
    await p.cleanup('_acme-challenge.www.sub.example.com', 'one')
    expect(cf.txt('_acme-challenge.www.sub.example.com').sort()).toEqual(['site-verification=abc', 'two'])
    await p.cleanup('_acme-challenge.www.sub.example.com', 'one') // gone already: success
    await p.cleanup('_acme-challenge.www.sub.example.com', 'two')
    expect(cf.txt('_acme-challenge.www.sub.example.com')).toEqual(['site-verification=abc'])
  })

  it('finds the zone once per name (cached), and reads it by ID when zoneId is set', async () => {
    const p = provider()
    expect(await p.zoneFor!('_acme-challenge.example.com')).toBe('example.com')
    expect(await p.zoneFor!('_acme-challenge.a.b.sub.example.com')).toBe('sub.example.com')
    const lookups = cf.requests.length
    await p.present('_acme-challenge.example.com', 'v')
    expect(cf.requests.length).toBe(lookups + 1)
    const byId = provider({ zoneId: cf.zones.get('other.org') })
    expect(await byId.zoneFor!('_acme-challenge.other.org')).toBe('other.org')
    expect(cf.requests.at(-1)!.url).toBe(`/client/v4/zones/${cf.zones.get('other.org')}`)
  })

  it('maps error envelopes to ERR_ACME_DNS_PROVIDER with the API\'s codes and messages', async () => {
    const p = provider({ zoneId: cf.zones.get('example.com') })
    await p.zoneFor!('_acme-challenge.example.com')
    cf.fail(400, [{ code: 9005, message: 'Content for TXT record is invalid.' }, { code: 1004, message: 'DNS Validation Error' }])
    const err = await failure(p.present('_acme-challenge.example.com', 'v'))
    expect(isAcmeError(err, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect(err.message).toBe('cloudflare: creating TXT _acme-challenge.example.com failed (HTTP 400): 9005 Content for TXT record is invalid.; 1004 DNS Validation Error')
    expect(err).toMatchObject({ status: 400, retryable: false })
  })

  it('reports a rejected token without echoing it, and a name in no visible zone', async () => {
    const wrong = randomBytes(20).toString('hex')
    const err = await failure(cloudflareProvider({ apiToken: wrong, baseUrl: cf.baseUrl }).present('_acme-challenge.example.com', 'v'))
    expect(err.message).toBe('cloudflare: looking up zone _acme-challenge.example.com failed (HTTP 403): 10000 Authentication error')
    expect(err.message).not.toContain(wrong)
    const none = await failure(provider().present('_acme-challenge.example.net', 'v'))
    expect(none.message).toMatch(/no zone for _acme-challenge\.example\.net is visible to this API token/)
  })

  it('retries 429 after Retry-After and 5xx, then gives up with a retryable error', async () => {
    const p = provider({ zoneId: cf.zones.get('example.com') })
    await p.zoneFor!('_acme-challenge.example.com')
    cf.fail(429, [{ code: 971, message: 'Please wait and consider throttling your request speed' }], { times: 2, headers: { 'retry-after': '0' } })
    await p.present('_acme-challenge.example.com', 'after-429')
    expect(cf.txt('_acme-challenge.example.com')).toEqual(['after-429'])
    expect(cf.requests.filter((r) => r.method === 'POST')).toHaveLength(3)

    const once = provider({ zoneId: cf.zones.get('example.com'), retries: 1 })
    await once.zoneFor!('_acme-challenge.example.com')
    cf.fail(503, [{ code: 10000, message: 'Service Unavailable' }], { times: 2 })
    const err = await failure(once.cleanup('_acme-challenge.example.com', 'after-429'))
    expect(err).toMatchObject({ code: 'ERR_ACME_DNS_PROVIDER', status: 503, retryable: true })
    expect(err.message).toBe('cloudflare: listing TXT _acme-challenge.example.com failed (HTTP 503): 10000 Service Unavailable')
    expect(cf.txt('_acme-challenge.example.com')).toEqual(['after-429'])
  })

  it('fails with a clear error when the API cannot be reached', async () => {
    const err = await failure(cloudflareProvider({ apiToken: token, baseUrl: 'http://127.0.0.1:1/client/v4', zoneId: 'z' }).present('_acme-challenge.example.com', 'v'))
    expect(err).toMatchObject({ code: 'ERR_ACME_DNS_PROVIDER', retryable: true })
    expect(err.message).toMatch(/^cloudflare: reading zone z: fetch failed/)
  })

  it('validates options, never echoing the token', () => {
    expect(() => cloudflareProvider({ apiToken: 'has space' })).toThrow(/"cloudflare\.apiToken" must be a Cloudflare API token \(value not shown/)
    expect(() => cloudflareProvider({ apiToken: 'has space' })).not.toThrow(/has space/)
    expect(() => cloudflareProvider({ apiToken: token, ttl: 30 })).toThrow(/cloudflare\.ttl/)
    expect(() => cloudflareProvider({ apiToken: token, baseUrl: 'ftp://x' })).toThrow(/cloudflare\.baseUrl/)
  })
})
