import { services } from '@fastify-acme/harness/vitest'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { Http01Responder } from '../challenges/http-01.js'
import { createCsr, generatePrivateKey } from '../keys.js'
import { silentLogger } from '../logger.js'
import { memoryStorage } from '../storage/memory.js'
import { AcmeIssuer } from './issuer.js'

describe('AcmeIssuer against Pebble', () => {
  it('obtains a certificate with HTTP-01', async () => {
    const { pebble } = services()
    const storage = memoryStorage()
    const http01 = new Http01Responder(storage, silentLogger)
    const server = await serveHttp01(http01)
    const issuer = new AcmeIssuer({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true }, { storage, solvers: [http01], logger: silentLogger })
    try {
      const name = await pointName(server.address)
      const key = await generatePrivateKey('ec-p256')
      const { certificate } = await issuer.issue({ names: [name], csr: await createCsr([name], key) })
      const leaf = new X509Certificate(certificate)
      expect(leaf.subjectAltName).toBe(`DNS:${name}`)
      expect(leaf.checkPrivateKey(createPrivateKey(key))).toBe(true)
    } finally {
      await server.close()
      await issuer.close()
    }
  })
})
