import { startPebble, type Pebble } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { handshake, serveTls } from '../../test/tls-client.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

const EAB = { kid: 'kid-1', hmacKey: 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' }

describe('External Account Binding (Pebble in EAB mode)', () => {
  let pebble: Pebble
  beforeAll(async () => {
    pebble = await startPebble({ dnsServer: services().challtestsrv.dnsServer, eab: { [EAB.kid]: EAB.hmacKey }, httpPort: services().pebble.httpPort })
  })
  afterAll(async () => { await pebble?.stop() })

  it('registers with EAB and obtains a certificate', async () => {
    const manager = createCertificateManager({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, eab: EAB, storage: memoryStorage() })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'eab')
      await manager.manage([name])
      expect(manager.list()[0]!.status).toBe('valid')
    } finally {
      await manager.close()
      await http.close()
    }
  })

  it('without EAB fails with ERR_ACME_EAB_REQUIRED', async () => {
    const manager = createCertificateManager({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, storage: memoryStorage() })
    try {
      await expect(manager.manage(['noeab.example.test'])).rejects.toMatchObject({ code: 'ERR_ACME_EAB_REQUIRED' })
    } finally {
      await manager.close()
    }
  })
})

describe('local CA through the manager', () => {
  it('issues and renews with no network, served over TLS and verified against the local root', async () => {
    const manager = createCertificateManager({
      directoryUrl: 'local',
      storage: memoryStorage(),
      challenges: { http01: false },
      localCa: { leafLifetimeMs: 2000 },
    })
    try {
      await manager.manage(['app.localhost', '127.0.0.1'])
      manager.start()
      const root = (await manager.localRootCertificate())!
      const tls = await serveTls(manager)
      const first = await handshake(tls.port, 'app.localhost', root)
      const renewed = await new Promise<{ serial: string }>((resolve) => manager.once('renewed', resolve))
      const second = await handshake(tls.port, 'app.localhost', root)
      expect(second.serialNumber.toLowerCase()).toBe(renewed.serial)
      expect(second.serialNumber).not.toBe(first.serialNumber)
      await tls.close()
    } finally {
      await manager.close()
    }
  })
})
