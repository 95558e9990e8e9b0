import { freePort, startKnot, startUnbound, uniqueLoopbackAddress, type Knot, type Unbound } from '@fastify-acme/harness'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rfc2136Provider } from '../dns/rfc2136.js'
import { isAcmeError } from '../errors.js'
import type { Logger } from '../logger.js'
import { resolveDns01Options, type Dns01Options, type Dns01Provider } from './dns-01.js'
import { authoritativeServers, findZone, followCname, txtVisible, waitForPropagation } from './dns-01-lookup.js'
import { Dns01Solver } from './dns-01-solver.js'
import type { ChallengeTask } from './solver.js'

function capturingLogger () {
  const lines: Array<{ level: string, obj: Record<string, unknown>, msg?: string }> = []
  const at = (level: string) => (obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { level, obj: {}, msg: obj } : { level, obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) })
  }
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
  return { logger, lines }
}

function task (name: string, wildcard = false): ChallengeTask {
  return { identifier: { type: 'dns', value: name }, wildcard, type: 'dns-01', token: 't', keyAuthorization: randomBytes(32).toString('base64url') }
}

describe('DNS-01 solver against Knot DNS: CNAME delegation, propagation, cleanup', () => {
  let knot: Knot
  beforeAll(async () => {
    knot = await startKnot({
      zones: [
        {
          name: 'example.test',
          update: false, // the key may write only the delegated zone, as in a real CNAME delegation
          records: [
            '_acme-challenge.www CNAME _acme-challenge.www.example.test.delegated.test.',
            '_acme-challenge.two CNAME hop.example.test.',
            'hop CNAME _acme-challenge.two.delegated.test.',
            '_acme-challenge.loop CNAME loop2.example.test.',
            'loop2 CNAME _acme-challenge.loop.example.test.',
            'apex-alias CNAME delegated.test.',
            'host-alias CNAME host.delegated.test.',
            'same-zone-alias CNAME example.test.',
          ],
        },
        { name: 'delegated.test', records: ['host A 127.0.0.1'] },
      ],
    })
  })
  afterAll(async () => { await knot?.stop() })

  const solver = (opts: Partial<Dns01Options> = {}, logger?: Logger) => new Dns01Solver(resolveDns01Options({
    provider: rfc2136Provider({ server: knot.address, tsig: knot.tsig }), resolvers: [knot.address], ...opts,
  }), logger)

  it('follows CNAMEs to the end of the chain, and fails on a loop', async () => {
    const servers = [knot.address]
    expect(await followCname('_acme-challenge.www.example.test', { servers })).toBe('_acme-challenge.www.example.test.delegated.test')
    expect(await followCname('_acme-challenge.two.example.test', { servers })).toBe('_acme-challenge.two.delegated.test')
    expect(await followCname('_acme-challenge.none.example.test', { servers })).toBe('_acme-challenge.none.example.test')
    await expect(followCname('_acme-challenge.loop.example.test', { servers })).rejects.toThrow(/loops or is too long/)
  })

  it('finds the zone and its authoritative nameservers', async () => {
    const servers = [knot.address]
    expect(await findZone('_acme-challenge.a.b.example.test', { servers })).toBe('example.test')
    // a name with a CNAME is no zone apex, whatever its SOA query answers (it failed, or named the alias)
    for (const alias of ['apex-alias', 'host-alias', 'same-zone-alias']) {
      expect(await findZone(`_acme-challenge.${alias}.example.test`, { servers })).toBe('example.test')
    }
    expect(await authoritativeServers('delegated.test', { servers })).toEqual([[knot.host]])
  })

  /** Runs `check` while Knot serves a fresh TXT value at `fqdn`. */
  async function withRecord (fqdn: string, check: (value: string) => Promise<void>) {
    const provider = rfc2136Provider({ server: knot.address, tsig: knot.tsig })
    const value = randomBytes(16).toString('base64url')
    await provider.present(fqdn, value)
    try {
      await check(value)
    } finally {
      await provider.cleanup(fqdn, value)
    }
  }

  it('counts a nameserver as answered when any of its addresses does (its IPv6 one may be unreachable here)', async () => {
    const fqdn = '_acme-challenge.v6.delegated.test'
    await withRecord(fqdn, async (value) => {
      const { logger } = capturingLogger()
      // 2001:db8::/32 is documentation space: never routed, so that address only times out
      const started = Date.now()
      await waitForPropagation({ fqdn, value, servers: [['[2001:db8::53]:53', knot.address]], timeoutMs: 5000, logger })
      expect(Date.now() - started).toBeLessThan(1500) // the reachable address decides, without waiting for the other
      await expect(waitForPropagation({ fqdn, value: 'not-there', servers: [[knot.address, '[2001:db8::53]:53']], timeoutMs: 300, logger }))
        .rejects.toThrow(new RegExp(`${knot.address.replace(/\./g, '\\.')} \\(1 other value\\(s\\)\\) / \\[2001:db8::53\\]:53 \\(`))
    })
  })

  it('checks with the fallback (the resolvers) when none of the nameservers answers at all (outbound DNS blocked)', async () => {
    const fqdn = '_acme-challenge.blocked.delegated.test'
    await withRecord(fqdn, async (value) => {
      const { logger, lines } = capturingLogger()
      const closed = `127.0.0.1:${await freePort()}` // nothing listens: refused at once
      await waitForPropagation({ fqdn, value, servers: [[closed]], fallback: [[knot.address]], timeoutMs: 3000, logger })
      expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ missing: [`${closed} (ECONNREFUSED)`], fallback: [knot.address] }) }))
      // a nameserver that answers, even without the value, is no reason to switch
      await expect(waitForPropagation({ fqdn, value: 'not-there', servers: [[knot.address]], fallback: [[closed]], timeoutMs: 300, logger }))
        .rejects.toThrow(/not visible on 127\.0\.0\.1:\d+ \(1 other value\(s\)\)/)
    })
  })

  it('presents at the CNAME target in the second zone, and cleans up there', async () => {
    const { logger, lines } = capturingLogger()
    const s = solver({}, logger)
    const [apex, wildcard] = [task('www.example.test'), task('www.example.test', true)]
    await Promise.all([s.present(apex), s.present(wildcard)])
    expect((await knot.txt('_acme-challenge.www.example.test.delegated.test')).sort()).toEqual([apex.keyAuthorization, wildcard.keyAuthorization].sort())
    expect(await knot.records('example.test', '_acme-challenge.www', 'TXT')).toEqual([])
    expect(lines).toContainEqual(expect.objectContaining({ level: 'info', obj: { name: '_acme-challenge.www.example.test', target: '_acme-challenge.www.example.test.delegated.test' } }))
    await s.cleanup(apex)
    expect(await knot.txt('_acme-challenge.www.example.test.delegated.test')).toEqual([wildcard.keyAuthorization])
    await s.cleanup(wildcard)
    expect(await knot.txt('_acme-challenge.www.example.test.delegated.test')).toEqual([])
  })

  it('without followCnames, presents at the name itself (refused here: that zone is not writable)', async () => {
    const err = await solver({ followCnames: false }).present(task('www.example.test')).catch((e: unknown) => e)
    expect(isAcmeError(err, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect((err as Error).message).toMatch(/_acme-challenge\.www\.example\.test in zone example\.test/)
  })

  it('waits for propagation, logging progress, when the record appears late', async () => {
    const inner = rfc2136Provider({ server: knot.address, tsig: knot.tsig })
    const late: Dns01Provider = {
      name: 'late',
      present: async (fqdn, value) => { setTimeout(() => { inner.present(fqdn, value).catch(() => {}) }, 1200) },
      cleanup: (fqdn, value) => inner.cleanup(fqdn, value),
    }
    const { logger, lines } = capturingLogger()
    const s = solver({ provider: late }, logger)
    const t = task('late.delegated.test')
    const started = Date.now()
    await s.present(t)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100)
    const progress = lines.filter((l) => l.msg === 'waiting for the DNS-01 TXT record to propagate')
    expect(progress.length).toBeGreaterThanOrEqual(1)
    expect(progress[0]).toMatchObject({ level: 'info', obj: { fqdn: '_acme-challenge.late.delegated.test', missing: [`${knot.address} (ENOTFOUND)`] } })
    await s.cleanup(t)
    expect(await knot.txt('_acme-challenge.late.delegated.test')).toEqual([])
  })

  it('gives up after propagationTimeoutMs with ERR_ACME_DNS_PROVIDER, and cleanup still removes what was written', async () => {
    const inner = rfc2136Provider({ server: knot.address, tsig: knot.tsig })
    const wrong: Dns01Provider = {
      present: (fqdn, value) => inner.present(fqdn, `wrong-${value}`),
      cleanup: (fqdn, value) => inner.cleanup(fqdn, `wrong-${value}`),
    }
    const s = solver({ provider: wrong, propagationTimeoutMs: 800 })
    const t = task('timeout.delegated.test')
    const err = await s.present(t).catch((e: unknown) => e)
    expect(isAcmeError(err, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect((err as Error).message).toMatch(new RegExp(`TXT record at _acme-challenge\\.timeout\\.delegated\\.test was not visible on ${knot.address.replace(/\./g, '\\.')} \\(1 other value\\(s\\)\\) after \\d+ ms \\(challenges\\.dns01\\.propagationTimeoutMs is 800\\)`))
    expect(await knot.txt('_acme-challenge.timeout.delegated.test')).toEqual([`wrong-${t.keyAuthorization}`])
    await s.cleanup(t)
    expect(await knot.txt('_acme-challenge.timeout.delegated.test')).toEqual([])
  })

  it('propagationTimeoutMs 0 skips the check; provider errors become ERR_ACME_DNS_PROVIDER naming the provider', async () => {
    const calls: string[] = []
    const blind: Dns01Provider = { name: 'blind', present: async (f) => { calls.push(f) }, cleanup: async () => { throw new Error('API down') } }
    const s = solver({ provider: blind, propagationTimeoutMs: 0 })
    const t = task('skip.delegated.test')
    await s.present(t)
    expect(calls).toEqual(['_acme-challenge.skip.delegated.test'])
    const err = await s.cleanup(t).catch((e: unknown) => e)
    expect(isAcmeError(err, 'ERR_ACME_DNS_PROVIDER')).toBe(true)
    expect((err as Error).message).toBe('blind could not clean up the TXT record at _acme-challenge.skip.delegated.test: API down')
  })
})

describe('DNS-01 propagation behind a caching resolver (Unbound in front of Knot)', () => {
  let knot: Knot
  let unbound: Unbound
  beforeAll(async () => {
    // "no such name" is cached for an hour, as for many real zones
    knot = await startKnot({ zones: [{ name: 'cached.test', negativeTtl: 3600 }] })
    unbound = await startUnbound({ host: uniqueLoopbackAddress(), cache: true, stubs: [{ zone: 'cached.test', server: knot.address }] })
  })
  afterAll(async () => { await unbound?.stop(); await knot?.stop() })

  it('checks the zone\'s nameservers (found through the resolvers), not the resolvers, whose negative cache hides the new record', async () => {
    const { logger, lines } = capturingLogger()
    // lookups go through Unbound; Knot is listed for its port (it serves on a test port, not 53)
    const s = new Dns01Solver(resolveDns01Options({
      provider: rfc2136Provider({ server: knot.address, tsig: knot.tsig }), resolvers: [unbound.address, knot.address], propagationTimeoutMs: 5000,
    }), logger)
    const t = task('neg.cached.test')
    const fqdn = '_acme-challenge.neg.cached.test'
    // asked before the record exists (an earlier attempt, another tool): Unbound caches "no such name"
    expect(await txtVisible(fqdn, t.keyAuthorization, unbound.address)).toBe('ENOTFOUND')
    await s.present(t)
    expect(lines.filter((l) => l.msg === 'waiting for the DNS-01 TXT record to propagate')).toEqual([])
    expect(await txtVisible(fqdn, t.keyAuthorization, unbound.address)).toBe('ENOTFOUND') // what checking it would have seen
    await s.cleanup(t)
  })
})

describe('challenges.dns01 options', () => {
  const provider: Dns01Provider = { present: async () => {}, cleanup: async () => {} }

  it('accepts a bare provider with every default, or provider plus settings', () => {
    expect(resolveDns01Options(provider)).toEqual({ provider, propagationTimeoutMs: 120_000, propagationDelayMs: 0, followCnames: true })
    expect(resolveDns01Options({ provider, resolvers: ['127.0.0.1:5353', '::1', '[2001:db8::1]:53'], propagationTimeoutMs: 0, followCnames: false }))
      .toMatchObject({ resolvers: ['127.0.0.1:5353', '::1', '[2001:db8::1]:53'], propagationTimeoutMs: 0, followCnames: false })
  })

  it.each([
    [null, /"challenges\.dns01" must be a DNS-01 provider or/],
    [{ present: () => {} }, /"challenges\.dns01\.provider" must be a DNS-01 provider/],
    [{ provider, resolvers: [] }, /"challenges\.dns01\.resolvers" must be a non-empty array/],
    [{ provider, resolvers: ['ns1.example.com'] }, /"challenges\.dns01\.resolvers" must be an IP address/],
    [{ provider, resolvers: ['127.0.0.1:99999'] }, /must be an IP address/],
    [{ provider, propagationTimeoutMs: -1 }, /propagationTimeoutMs" must be a whole number/],
    [{ provider, propagationDelayMs: 1.5 }, /propagationDelayMs" must be a whole number/],
    [{ provider, followCnames: 'yes' }, /followCnames" must be a boolean/],
  ])('rejects %j', (value, message) => {
    expect(() => resolveDns01Options(value as never)).toThrow(message)
  })
})
