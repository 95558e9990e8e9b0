import { startKnot, type Knot } from '@fastify-acme/harness'
import { randomBytes, randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAcmeError } from '../errors.js'
import { rfc2136Provider } from './rfc2136.js'
import { exchangeTcp, parseServer } from './tcp.js'
import { signRequest, verifyResponse } from './tsig.js'
import { decodeMessage, encodeMessage, Opcode, RecordClass, RecordType } from './wire.js'

describe('rfc2136Provider against Knot DNS (DNS UPDATE with TSIG)', () => {
  let knot: Knot
  beforeAll(async () => {
    knot = await startKnot({ zones: [{ name: 'example.test' }, { name: 'delegated.test' }, { name: 'readonly.test', update: false }] })
  })
  afterAll(async () => { await knot?.stop() })

  const provider = () => rfc2136Provider({ server: knot.address, tsig: knot.tsig })
  const value = () => randomBytes(32).toString('base64url')

  it('adds a TXT value, keeps others at the name, and removes exactly one value', async () => {
    const p = provider()
    const [a, b] = [value(), value()]
    await Promise.all([p.present('_acme-challenge.one.example.test', a), p.present('_acme-challenge.one.example.test', b)])
    expect((await knot.txt('_acme-challenge.one.example.test')).sort()).toEqual([a, b].sort())
    await p.present('_acme-challenge.one.example.test', a) // presenting again is a no-op
    expect(await knot.txt('_acme-challenge.one.example.test')).toHaveLength(2)
    expect(await knot.records('example.test', '_acme-challenge.one', 'TXT')).toEqual(
      expect.arrayContaining([expect.stringMatching(/^_acme-challenge\.one\.example\.test\. 60 TXT /)]))
    await p.cleanup('_acme-challenge.one.example.test', a)
    expect(await knot.txt('_acme-challenge.one.example.test')).toEqual([b])
    await p.cleanup('_acme-challenge.one.example.test', a) // removing a value that is gone succeeds
    await p.cleanup('_acme-challenge.one.example.test', b)
    expect(await knot.txt('_acme-challenge.one.example.test')).toEqual([])
  })

  it('finds the zone with an SOA query, for any depth and for each zone the server has', async () => {
    const p = provider()
    expect(await p.zoneFor!('_acme-challenge.a.b.example.test')).toBe('example.test')
    expect(await p.zoneFor!('_acme-challenge.x.delegated.test')).toBe('delegated.test')
    expect(await p.zoneFor!('example.test')).toBe('example.test')
    await p.present('_acme-challenge.deep.er.delegated.test', 'v')
    expect(await knot.txt('_acme-challenge.deep.er.delegated.test')).toEqual(['v'])
    await p.cleanup('_acme-challenge.deep.er.delegated.test', 'v')
  })

  it('uses the zone option instead of discovery', async () => {
    const p = rfc2136Provider({ server: knot.address, tsig: knot.tsig, zone: 'example.test', ttl: 120 })
    await p.present('_acme-challenge.z.example.test', 'zoned')
    expect(await knot.records('example.test', '_acme-challenge.z', 'TXT')).toEqual(['_acme-challenge.z.example.test. 120 TXT "zoned"'])
    await p.cleanup('_acme-challenge.z.example.test', 'zoned')
  })

  it('fails with ERR_ACME_DNS_PROVIDER for a zone the server does not serve', async () => {
    const err = await provider().present('_acme-challenge.elsewhere.invalid', 'v').catch((e: unknown) => e)
    expect(isAcmeError(err, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect((err as Error).message).toMatch(/finding the zone of _acme-challenge\.elsewhere\.invalid: .*REFUSED/)
  })

  it('is refused where the key may not update, and without a key', async () => {
    const refused = await provider().present('_acme-challenge.readonly.test', 'v').catch((e: unknown) => e)
    expect(isAcmeError(refused, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect((refused as Error).message).toMatch(/adding TXT _acme-challenge\.readonly\.test in zone readonly\.test: .* answered (REFUSED|NOTAUTH)/)
    const unsigned = await rfc2136Provider({ server: knot.address }).present('_acme-challenge.u.example.test', 'v').catch((e: unknown) => e)
    expect(isAcmeError(unsigned, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect(await knot.txt('_acme-challenge.u.example.test')).toEqual([])
  })

  it('reports a wrong TSIG secret or key name as the server rejecting the key, never echoing the secret', async () => {
    const wrongSecret = randomBytes(32).toString('base64')
    const badSecret = await rfc2136Provider({ server: knot.address, tsig: { ...knot.tsig, secret: wrongSecret } })
      .present('_acme-challenge.k.example.test', 'v').catch((e: unknown) => e)
    expect((badSecret as Error).message).toMatch(/NOTAUTH\/BADSIG: the server rejected the TSIG key/)
    expect((badSecret as Error).message).not.toContain(wrongSecret)
    const badName = await rfc2136Provider({ server: knot.address, tsig: { ...knot.tsig, name: 'nobody' } })
      .present('_acme-challenge.k.example.test', 'v').catch((e: unknown) => e)
    expect((badName as Error).message).toMatch(/NOTAUTH\/BADKEY/)
    expect((badName as Error).message).not.toContain(knot.tsig.secret)
    expect(await knot.txt('_acme-challenge.k.example.test')).toEqual([])
  })

  it('fails fast with a clear error when nothing listens', async () => {
    const err = await rfc2136Provider({ server: '127.0.0.1:1', tsig: knot.tsig, zone: 'example.test' })
      .present('_acme-challenge.example.test', 'v').catch((e: unknown) => e)
    expect(isAcmeError(err, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect((err as Error).message).toMatch(/127\.0\.0\.1:1: connect ECONNREFUSED/)
  })

  it('validates options and never echoes a bad secret', () => {
    expect(() => rfc2136Provider({ server: 'not a server' })).toThrow(/rfc2136\.server/)
    expect(() => rfc2136Provider({ server: '[::1]:5353', tsig: { name: 'k', secret: 'p@ss word!' } })).toThrow(/rfc2136\.tsig\.secret" must be a base64 string \(value not shown/)
    expect(() => rfc2136Provider({ server: '[::1]:5353', tsig: { name: 'k', secret: 'p@ss word!' } })).not.toThrow(/p@ss/)
    expect(() => rfc2136Provider({ server: 'ns1.example.test', tsig: { name: 'k', secret: 'c2VjcmV0', algorithm: 'md5' as never } })).toThrow(/algorithm/)
    expect(() => rfc2136Provider({ server: '127.0.0.1', ttl: -1 })).toThrow(/rfc2136\.ttl/)
  })
})

describe('TSIG (RFC 8945) against Knot DNS', () => {
  let knot: Knot
  beforeAll(async () => { knot = await startKnot({ zones: [{ name: 'example.test' }] }) })
  afterAll(async () => { await knot?.stop() })

  async function signedQuery () {
    const key = { name: knot.tsig.name, algorithm: knot.tsig.algorithm, secret: Buffer.from(knot.tsig.secret, 'base64') }
    const query = encodeMessage({ id: randomInt(65536), opcode: Opcode.QUERY, questions: [{ name: 'example.test', type: RecordType.SOA, class: RecordClass.IN }] })
    const { signed, mac } = signRequest(query, key)
    const raw = await exchangeTcp(parseServer(knot.address)!, signed, 5000)
    return { key, mac, raw }
  }

  it('verifies the MAC of a signed answer, and rejects a tampered answer or a wrong request MAC', async () => {
    const { key, mac, raw } = await signedQuery()
    expect(verifyResponse(raw, decodeMessage(raw), mac, key)).toBeNull()
    const tampered = Buffer.from(raw)
    tampered[decodeMessage(raw).lastAdditionalOffset! - 2]! ^= 1 // inside the last record before the TSIG record
    expect(verifyResponse(tampered, decodeMessage(tampered), mac, key)).toMatch(/does not verify/)
    expect(verifyResponse(raw, decodeMessage(raw), Buffer.alloc(mac.length), key)).toMatch(/does not verify/)
    expect(verifyResponse(raw, decodeMessage(raw), mac, { ...key, secret: randomBytes(32) })).toMatch(/does not verify/)
    expect(verifyResponse(raw, decodeMessage(raw), mac, key, Date.now() + 3_600_000)).toMatch(/time window/)
  })
})
