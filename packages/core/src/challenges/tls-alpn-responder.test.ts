import { describe, expect, it } from 'vitest'
import { silentLogger } from '../logger.js'
import { memoryStorage } from '../storage/memory.js'
import type { ChallengeTask } from './solver.js'
import { TlsAlpnResponder } from './tls-alpn-responder.js'

describe('TLS-ALPN-01 across instances sharing a storage', () => {
  it('serves the challenge another instance presents now, not one it loaded for an earlier order', async () => {
    const storage = memoryStorage()
    const a = new TlsAlpnResponder(storage, silentLogger)
    const b = new TlsAlpnResponder(storage, silentLogger)
    const task = (keyAuthorization: string): ChallengeTask => ({
      identifier: { type: 'dns', value: 'alpn.example.test' }, wildcard: false, type: 'tls-alpn-01', token: 'tok', keyAuthorization,
    })
    await a.present(task('tok.first'))
    const first = await b.loadContext('alpn.example.test')
    expect(first).toBeDefined()
    expect(await b.loadContext('alpn.example.test')).toBe(first) // unchanged in storage: built once
    await a.cleanup(task('tok.first'))
    expect(await b.loadContext('alpn.example.test')).toBeUndefined() // cleaned up elsewhere: gone here too
    await a.present(task('tok.second')) // the next order (a retry, a forced renewal)
    const second = await b.loadContext('alpn.example.test')
    expect(second).toBeDefined()
    expect(second).not.toBe(first)
    expect(b.contextFor('alpn.example.test')).toBeUndefined() // the synchronous path serves only what this instance presented
  })
})
