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

  it('logs a warning a flood of names repeats (allow() down) once per 10 s, not once per name', async () => {
    const warnings: unknown[] = []
    const logger = { ...silentLogger, warn: (obj: unknown) => { warnings.push(obj) } }
    const onDemand = new OnDemand(
      { allow: () => { throw new Error('tenant database down') }, handshakeTimeoutMs: 1000, decisionCacheMs: 60_000, maxCertificates: 10 },
      logger, (name) => ({ names: [name], primary: name, onDemand: true }) as Managed, () => 0)
    for (let i = 0; i < 100; i++) assert.equal(await onDemand.admit(`random${i}.example.test`), undefined)
    assert.equal(warnings.length, 1)
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

describe('on-demand names and the rest of the manager', () => {
  /** A manager whose allow() answers from `rule`, counting allow() calls and storage reads. */
  function setup (rule: (name: string) => boolean | Promise<boolean>, opts: { leafLifetimeMs?: number, checkIntervalMs?: number } = {}) {
    const inner = memoryStorage()
    const counts = { allow: 0, get: 0 }
    const storage: Storage = { ...inner, get: (key) => { counts.get++; return inner.get(key) } }
    const manager = createCertificateManager({
      directoryUrl: 'local',
      storage,
      ...(opts.leafLifetimeMs ? { localCa: { leafLifetimeMs: opts.leafLifetimeMs } } : {}),
      ...(opts.checkIntervalMs ? { renewal: { checkIntervalMs: opts.checkIntervalMs } } : {}),
      onDemand: { allow: (name) => { counts.allow++; return rule(name) }, decisionCacheMs: 0 },
    })
    return { manager, counts }
  }

  it('refuses wildcards, IP literals and single labels in SNI before allow() (a wildcard would then serve names allow() never saw)', async () => {
    const { manager, counts } = setup(() => true)
    try {
      for (const sni of ['*.saas.test', '127.0.0.1', '::1', 'localhost', 'com']) {
        assert.equal(await manager.loadSecureContext(sni), undefined, sni)
      }
      assert.deepEqual(counts, { allow: 0, get: 0 })
      assert.deepEqual(manager.list(), [])
    } finally {
      await manager.close()
    }
  })

  it('never makes an on-demand certificate the default for clients without SNI (it would show them a tenant\'s name)', async () => {
    const { manager } = setup(() => true)
    try {
      assert.ok(await manager.loadSecureContext('tenant.example.test'))
      assert.equal(manager.defaultName(), undefined)
      await manager.manage([['configured.example.test']])
      assert.equal(manager.defaultName(), 'configured.example.test')
    } finally {
      await manager.close()
    }
  })

  it('reads no storage for an acme-tls/1 handshake to a name allow() denies', async () => {
    const { manager, counts } = setup((name) => name.startsWith('ok.'))
    try {
      for (let i = 0; i < 20; i++) assert.equal(await manager.loadTlsAlpnContext(`random${i}.example.test`), undefined)
      assert.equal(counts.get, 0)
      assert.equal(await manager.loadTlsAlpnContext('ok.example.test'), undefined) // allowed: its stored challenge is looked for
      assert.equal(counts.get, 1)
    } finally {
      await manager.close()
    }
  })

  it('renews an on-demand certificate only while allow() admits it; a throwing allow() skips the attempt and keeps it', async () => {
    let answer: boolean | Error = true
    let asked = 0
    const { manager } = setup(() => { asked++; if (answer instanceof Error) throw answer; return answer }, { leafLifetimeMs: 3000, checkIntervalMs: 1000 })
    try {
      await manager.start()
      assert.ok(await manager.loadSecureContext('kept.example.test'))
      const first = manager.certificateFor('kept.example.test')!
      answer = new Error('tenant database down')
      asked = 0
      await new Promise((resolve) => setTimeout(resolve, 2500)) // due at 2/3 of 3 s: attempts skipped, at most one a second
      assert.equal(manager.certificateFor('kept.example.test')?.certificate, first.certificate)
      assert.equal(manager.list().length, 1)
      assert.ok(asked >= 1 && asked <= 2, `allow() asked ${asked} times in 0.5 s of being due`)
      answer = false
      await new Promise((resolve) => setTimeout(resolve, 1200))
      assert.deepEqual(manager.list(), [])
      assert.equal(manager.secureContext('kept.example.test'), undefined)
    } finally {
      await manager.close()
    }
  })

  it('a name first obtained on demand and then configured no longer counts as on-demand', async () => {
    const { manager } = setup(() => true)
    try {
      await manager.loadSecureContext('both.example.test')
      assert.equal(manager.list()[0]!.onDemand, true)
      await manager.manage([['both.example.test']])
      assert.equal(manager.list()[0]!.onDemand, false)
    } finally {
      await manager.close()
    }
  })
})
