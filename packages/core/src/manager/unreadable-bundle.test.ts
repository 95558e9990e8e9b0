import { startAcmeProxy, type AcmeProxy } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, serveHttp01 } from '../../test/acme-fixtures.js'
import { encryptedStorage } from '../storage/encryption.js'
import { StorageKeys } from '../storage/keys.js'
import { memoryStorage } from '../storage/memory.js'
import { createCertificateManager } from './manager.js'

describe('an unreadable stored bundle is never silently lost', () => {
  const { pebble } = services()
  let proxy: AcmeProxy
  beforeAll(async () => { proxy = await startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls }) })
  afterAll(async () => { await proxy?.close() })
  const ca = () => ({ directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true })

  it('keeps the bytes of a corrupt bundle aside before the new order replaces it', async () => {
    const storage = memoryStorage()
    const manager = createCertificateManager({ ...ca(), storage })
    const http = await serveHttp01(manager.http01)
    try {
      const name = await pointName(http.address, 'unreadable')
      const corrupt = '{"version":1,"names":["truncated'
      await storage.put(StorageKeys.certificateBundle(name), corrupt)
      await manager.manage([name])
      expect(manager.list()[0]!.status).toBe('valid')
      const kept = (await storage.list(StorageKeys.certificateDir(name))).filter((k) => k.includes('/unreadable-'))
      expect(kept).toHaveLength(1)
      expect(Buffer.from((await storage.get(kept[0]!))!).toString('utf8')).toBe(corrupt)
    } finally {
      await manager.close()
      await http.close()
    }
  })

  it('orders nothing over a value it cannot decrypt (another key), and leaves it in place', async () => {
    const raw = memoryStorage()
    const name = 'wrong-key.example.test'
    await encryptedStorage(raw, { keys: [{ id: 'k1', key: randomBytes(32) }] }).put(StorageKeys.certificateBundle(name), '{"version":1}')
    const before = Buffer.from((await raw.get(StorageKeys.certificateBundle(name)))!)
    const orders = proxy.count('newOrder')
    const manager = createCertificateManager({ ...ca(), storage: encryptedStorage(raw, { keys: [{ id: 'k1', key: randomBytes(32) }] }) })
    try {
      await expect(manager.manage([name])).rejects.toMatchObject({ code: 'ERR_ACME_STORAGE_CORRUPT' })
      expect(Buffer.from((await raw.get(StorageKeys.certificateBundle(name)))!).equals(before)).toBe(true)
      expect(proxy.count('newOrder')).toBe(orders)
    } finally {
      await manager.close()
    }
  })
})
