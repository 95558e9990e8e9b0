import assert from 'node:assert/strict'
import { describe, it } from 'vitest'
import { silentLogger } from '../logger.js'
import { memoryStorage } from '../storage/memory.js'
import type { Storage } from '../storage/contract.js'
import { createCertificateManager, type Managed } from './manager.js'
import { OnDemand } from './on-demand.js'

describe('OnDemand', () => {
  it('denies a handshake whose allow() does not answer within handshakeTimeoutMs, and asks again at the next one', async () => {
    let calls = 0
    const onDemand = new OnDemand(
      { allow: () => { calls++; return new Promise<boolean>(() => {}) }, handshakeTimeoutMs: 100, decisionCacheMs: 60_000, maxCertificates: 10 },
      silentLogger, (name) => ({ names: [name], primary: name, onDemand: true }) as Managed, () => 0)
    const started = Date.now()
    assert.equal(await onDemand.admit('slow.example.test'), undefined)
    const ms = Date.now() - started
    assert.ok(ms >= 90 && ms < 1000, `denied after ${ms} ms (timeout 100 ms)`)
    assert.equal(await onDemand.admit('slow.example.test'), undefined)
    assert.equal(calls, 2, 'a timed-out allow() is not cached as a decision')
  })

  it('caches an answer for decisionCacheMs', async () => {
    let calls = 0
    const onDemand = new OnDemand(
      { allow: async (name) => { calls++; return name.startsWith('ok.') }, handshakeTimeoutMs: 1000, decisionCacheMs: 60_000, maxCertificates: 10 },
      silentLogger, (name) => ({ names: [name], primary: name, onDemand: true }) as Managed, () => 0)
    assert.equal((await onDemand.admit('ok.example.test'))?.primary, 'ok.example.test')
    assert.equal(await onDemand.admit('no.example.test'), undefined)
    await onDemand.admit('ok.example.test')
    await onDemand.admit('no.example.test')
    assert.equal(calls, 2)
  })
})

describe('a first handshake for a new on-demand name', () => {
  it('waits handshakeTimeoutMs in all, the time allow() took included', async () => {
    const inner = memoryStorage()
    // the order never gets its lock, so the certificate never comes
    const storage: Storage = {
      ...inner,
      lock: (_name, opts) => new Promise((_resolve, reject) => opts?.signal?.addEventListener('abort', () => reject(opts.signal!.reason))),
    }
    const manager = createCertificateManager({
      directoryUrl: 'local',
      storage,
      onDemand: { allow: () => new Promise<boolean>((resolve) => setTimeout(resolve, 250, true)), handshakeTimeoutMs: 400 },
    })
    try {
      const started = Date.now()
      assert.equal(await manager.loadSecureContext('slow-order.example.test'), undefined)
      const ms = Date.now() - started
      assert.ok(ms >= 390 && ms < 600, `handshake gave up after ${ms} ms (bound 400 ms; allow() took 250 ms of it)`)
    } finally {
      await manager.close({ timeoutMs: 50 }) // aborts the order still waiting for its lock
    }
  })
})
