import { generatePrivateKey } from '@fastify-acme/core'
import { createPrivateKey } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { addPrivateKey, addSecret, scanLogs } from '../lib/secrets.js'
import { testEnv } from '../lib/test-env.js'
import { runBadInputs } from './bad-inputs.js'
import { runCaFaults } from './ca-faults.js'
import { runCluster } from './cluster.js'

describe('secrets in logs', () => {
  it('debug logs of a cluster, an EAB account under CA faults and the stored/option bad inputs hold no key material', async () => {
    const env = testEnv()
    await runCluster(env, { storage: 'fs', processes: 2, names: 2, timeoutMs: 30_000 })
    // a request that meets Pebble's 50 % badNonce rejections and injected faults more than the
    // client's 5 attempts waits for the 1-minute backoff: allow for it, the key must be stored to be looked for
    const faults = await runCaFaults(env, { names: 1, timeoutMs: 90_000, faultsPerRule: 3 })
    expect(faults.unissued).toBe(0)
    await runBadInputs(env, (c) => c.group === 'stored' || c.group === 'options')
    const scan = scanLogs(env.logDir)
    expect(scan.secrets).toBeGreaterThanOrEqual(6) // keys of 2 certificates, 2 accounts, the EAB key, ...
    expect(scan.bytes).toBeGreaterThan(10_000) // debug level really wrote something
    expect(scan.hits).toEqual([])
  }, 150_000)

  it('the scan finds a key written as a JWK d, a PEM body line, hex, or an EAB key (so a clean scan means something)', async () => {
    const pem = await generatePrivateKey('ec-p256')
    addPrivateKey('probe key', pem)
    addSecret('probe EAB key', 'c2VjcmV0LWhtYWMta2V5LWZvci10aGUtcHJvYmU')
    const d = createPrivateKey(pem).export({ format: 'jwk' }).d!
    const dir = mkdtempSync(path.join(tmpdir(), 'reliability-scan-'))
    writeFileSync(path.join(dir, 'a.log'), [
      JSON.stringify({ msg: 'x', scalar: Buffer.from(d, 'base64url').toString('hex') }),
      JSON.stringify({ msg: 'y', line: pem.split('\n')[2] }),
      JSON.stringify({ msg: 'z', key: 'c2VjcmV0LWhtYWMta2V5LWZvci10aGUtcHJvYmU' }),
      JSON.stringify({ msg: 'clean' }),
    ].join('\n'))
    expect(scanLogs(dir).hits.map((h) => h.line)).toEqual([1, 2, 3])
  })
})
