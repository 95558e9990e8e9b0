import { challtestsrvClient } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { describe, expect, it } from 'vitest'
import { resolveDns01Options } from '../challenges/dns-01.js'
import { Dns01Solver } from '../challenges/dns-01-solver.js'
import { createCsr, generatePrivateKey } from '../keys.js'
import { silentLogger } from '../logger.js'
import { memoryStorage } from '../storage/memory.js'
import { AcmeIssuer } from './issuer.js'
import { DEFAULT_POLL } from './order.js'

describe('the order deadline', () => {
  it('grows by the time DNS-01 may take to present: poll.timeoutMs bounds only the part spent on the CA', async () => {
    const { pebble, challtestsrv } = services()
    const dns = challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer)
    // a provider that takes longer than the whole CA polling budget below
    const provider = {
      name: 'slow',
      present: async (fqdn: string, value: string) => { await new Promise((resolve) => setTimeout(resolve, 800)); await dns.setTxt(fqdn, value) },
      cleanup: async (fqdn: string) => { await dns.clearTxt(fqdn) },
    }
    const solver = new Dns01Solver(resolveDns01Options({ provider, propagationTimeoutMs: 0 }))
    const issuer = new AcmeIssuer(
      { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, poll: { ...DEFAULT_POLL, timeoutMs: 400 } },
      { storage: memoryStorage(), solvers: [solver], logger: silentLogger })
    try {
      const name = `deadline-${Date.now()}.example.test`
      const { certificate } = await issuer.issue({ names: [name], csr: await createCsr([name], await generatePrivateKey('ec-p256')) })
      expect(certificate).toContain('BEGIN CERTIFICATE')
    } finally {
      await issuer.close()
    }
  })
})
