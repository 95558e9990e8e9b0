import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startFakeRoute53, type FakeRoute53 } from '../../test/route53-api.js'
import type { AcmeError } from '../errors.js'
import { route53Provider, type Route53Options } from './route53.js'

// The real @aws-sdk/client-route-53 against a local server implementing the documented
// Route 53 API shapes, not the live service.
describe('route53Provider (real @aws-sdk/client-route-53) against a local Route 53 API server', () => {
  const accessKeyId = 'AKIDFASTIFYACMETEST'
  const secretAccessKey = randomBytes(30).toString('base64')
  let r53: FakeRoute53
  beforeAll(async () => {
    r53 = await startFakeRoute53(accessKeyId, [
      { id: 'ZPRIVATE', name: 'example.com', private: true },
      { id: 'ZPUBLIC', name: 'example.com' },
      { id: 'ZSUB', name: 'sub.example.com' },
    ])
  })
  afterAll(async () => { await r53?.close() })
  beforeEach(() => {
    r53.calls.length = 0
    r53.changes.length = 0
    r53.pendingPolls = 2
  })

  const provider = (extra: Route53Options = {}) => route53Provider({
    clientConfig: { endpoint: r53.endpoint, region: 'us-east-1', credentials: { accessKeyId, secretAccessKey }, maxAttempts: 3 },
    pollIntervalMs: 20,
    ...extra,
  })
  const txt = (zone: string, name: string) => r53.sets.get(zone)!.find((s) => s.name === `${name}.` && s.type === 'TXT')
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure') }, (err: AcmeError) => err)

  it('replaces the TXT set keeping other values (DELETE of the set read + CREATE, in one batch), waits for INSYNC (GetChange), and restores the set on cleanup', async () => {
    r53.sets.get('ZPUBLIC')!.push({ name: '_acme-challenge.example.com.', type: 'TXT', ttl: 300, values: ['"site-verification=abc"'] })
    const p = provider()
    await Promise.all([p.present('_acme-challenge.example.com', 'one'), p.present('_acme-challenge.example.com', 'two')])
    expect(txt('ZPUBLIC', '_acme-challenge.example.com')).toEqual({ name: '_acme-challenge.example.com.', type: 'TXT', ttl: 300, values: ['"site-verification=abc"', '"one"', '"two"'] })
    expect(r53.changes.map((c) => [c.action, c.values.length])).toEqual([['DELETE', 1], ['CREATE', 2], ['DELETE', 2], ['CREATE', 3]])
    // each present resolved only after its change went PENDING -> PENDING -> INSYNC
    expect(r53.calls.filter((c) => c === 'GetChange')).toHaveLength(6)
    expect(r53.calls.filter((c) => c === 'ListHostedZonesByName')).toHaveLength(2) // _acme-challenge.example.com, then example.com; cached after

    await p.cleanup('_acme-challenge.example.com', 'one')
    await p.cleanup('_acme-challenge.example.com', 'one') // gone already: no change
    await p.cleanup('_acme-challenge.example.com', 'two')
    expect(txt('ZPUBLIC', '_acme-challenge.example.com')!.values).toEqual(['"site-verification=abc"'])
    expect(r53.changes.slice(4).map((c) => [c.action, c.values])).toEqual([
      ['DELETE', ['"site-verification=abc"', '"one"', '"two"']], ['CREATE', ['"site-verification=abc"', '"two"']],
      ['DELETE', ['"site-verification=abc"', '"two"']], ['CREATE', ['"site-verification=abc"']],
    ])
  })

  it('DELETEs the set (exactly as it is) when the last value goes', async () => {
    const p = provider()
    await p.present('_acme-challenge.www.sub.example.com', 'only')
    expect(txt('ZSUB', '_acme-challenge.www.sub.example.com')).toMatchObject({ ttl: 60, values: ['"only"'] })
    await p.cleanup('_acme-challenge.www.sub.example.com', 'only')
    expect(txt('ZSUB', '_acme-challenge.www.sub.example.com')).toBeUndefined()
    expect(r53.changes.map((c) => [c.zone, c.action])).toEqual([['ZSUB', 'CREATE'], ['ZSUB', 'DELETE']])
  })

  it('finds the closest public hosted zone, skipping private ones', async () => {
    const p = provider()
    expect(await p.zoneFor!('_acme-challenge.example.com')).toBe('example.com')
    expect(await p.zoneFor!('_acme-challenge.a.b.sub.example.com')).toBe('sub.example.com')
    await p.present('_acme-challenge.example.com', 'public')
    expect(r53.changes[0]).toMatchObject({ zone: 'ZPUBLIC' })
    await p.cleanup('_acme-challenge.example.com', 'public')
    const none = await failure(provider().present('_acme-challenge.example.net', 'v'))
    expect(none.message).toMatch(/no public hosted zone for _acme-challenge\.example\.net is visible/)
  })

  it('lets the SDK retry Throttling, and reports it when retries run out', async () => {
    const p = provider({ hostedZoneId: '/hostedzone/ZSUB', waitForSync: false })
    r53.fail('ChangeResourceRecordSets', 400, 'Throttling', 'Rate exceeded')
    await p.present('_acme-challenge.t.sub.example.com', 'v')
    expect(r53.calls.filter((c) => c === 'ChangeResourceRecordSets')).toHaveLength(2)
    expect(r53.calls).not.toContain('GetChange')
    r53.fail('ListResourceRecordSets', 400, 'Throttling', 'Rate exceeded', 3)
    const err = await failure(p.cleanup('_acme-challenge.t.sub.example.com', 'v'))
    expect(err).toMatchObject({ code: 'ERR_ACME_DNS_PROVIDER', retryable: true, status: 400 })
    expect(err.message).toBe('route53: reading TXT _acme-challenge.t.sub.example.com failed: Throttling: Rate exceeded')
    await p.cleanup('_acme-challenge.t.sub.example.com', 'v')
  })

  it('maps InvalidChangeBatch and NoSuchHostedZone to ERR_ACME_DNS_PROVIDER with Route 53\'s messages', async () => {
    const wrongZone = await failure(provider({ hostedZoneId: 'ZSUB' }).present('_acme-challenge.example.com', 'v'))
    expect(wrongZone).toMatchObject({ code: 'ERR_ACME_DNS_PROVIDER', retryable: false, status: 400 })
    expect(wrongZone.message).toBe('route53: changing TXT _acme-challenge.example.com failed: InvalidChangeBatch: [RRSet with DNS name _acme-challenge.example.com. is not permitted in zone sub.example.com.]')
    const noZone = await failure(provider({ hostedZoneId: 'ZNOPE' }).present('_acme-challenge.example.com', 'v'))
    expect(noZone.message).toBe('route53: reading hosted zone ZNOPE failed: NoSuchHostedZone: No hosted zone found with ID: ZNOPE')
    const p = provider({ hostedZoneId: 'ZSUB' })
    await p.present('_acme-challenge.d.sub.example.com', 'v')
    r53.fail('ChangeResourceRecordSets', 400, 'InvalidChangeBatch', "[Tried to delete resource record set [name='_acme-challenge.d.sub.example.com.', type='TXT'] but the values provided do not match the current values]")
    // the set changed between read and write (another instance): read again and retry
    await p.cleanup('_acme-challenge.d.sub.example.com', 'v')
    expect(txt('ZSUB', '_acme-challenge.d.sub.example.com')).toBeUndefined()
  })

  it('never overwrites a value another instance wrote meanwhile (two providers, one name)', async () => {
    const a = provider()
    const b = provider()
    const name = '_acme-challenge.both.example.com'
    await Promise.all([a.present(name, 'from-a'), b.present(name, 'from-b'), a.present(name, 'a2'), b.present(name, 'b2')])
    expect(txt('ZPUBLIC', name)!.values.sort()).toEqual(['"a2"', '"b2"', '"from-a"', '"from-b"'])
    await Promise.all([a.cleanup(name, 'from-a'), b.cleanup(name, 'from-b')])
    expect(txt('ZPUBLIC', name)!.values.sort()).toEqual(['"a2"', '"b2"'])
    await Promise.all([a.cleanup(name, 'a2'), b.cleanup(name, 'b2')])
    expect(txt('ZPUBLIC', name)).toBeUndefined()
  })

  it('gives up waiting for INSYNC after syncTimeoutMs', async () => {
    r53.pendingPolls = 1_000
    const p = provider({ hostedZoneId: 'ZSUB', syncTimeoutMs: 200, pollIntervalMs: 30 })
    const err = await failure(p.present('_acme-challenge.slow.sub.example.com', 'v'))
    expect(err).toMatchObject({ code: 'ERR_ACME_DNS_PROVIDER', retryable: true })
    expect(err.message).toMatch(/^route53: the change for TXT _acme-challenge\.slow\.sub\.example\.com \(\/change\/C\d+\) was still PENDING after 200 ms/)
    await p.cleanup('_acme-challenge.slow.sub.example.com', 'v')
    expect(txt('ZSUB', '_acme-challenge.slow.sub.example.com')).toBeUndefined()
  })

  it('reports rejected credentials without echoing the secret', async () => {
    const otherSecret = randomBytes(30).toString('base64')
    const p = route53Provider({ clientConfig: { endpoint: r53.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDWRONG', secretAccessKey: otherSecret } } })
    const err = await failure(p.present('_acme-challenge.example.com', 'v'))
    expect(err.message).toBe('route53: looking up hosted zone _acme-challenge.example.com failed: InvalidClientTokenId: The security token included in the request is invalid.')
    expect(JSON.stringify({ message: err.message, stack: err.stack })).not.toContain(otherSecret)
  })

  it('validates options', () => {
    expect(() => route53Provider({ ttl: -5 })).toThrow(/route53\.ttl/)
    expect(() => route53Provider({ client: {} as never })).toThrow(/route53\.client/)
    expect(() => route53Provider({ hostedZoneId: '' })).toThrow(/route53\.hostedZoneId/)
  })
})
