import { describe, expect, it } from 'vitest'
import type { RedisConnection } from './connection.js'
import { checkRedisServer } from './server-check.js'

/** node-redis's TimeoutError: no message of its own */
class TimeoutError extends Error {}

const failing = (err: unknown): RedisConnection => ({
  send: async () => { throw err },
  openSubscriber: async () => { throw new Error('unused') },
  close: async () => {},
})

describe('checkRedisServer', () => {
  it('says why CONFIG GET failed even when the error has no message (a timeout)', async () => {
    const { warnings } = await checkRedisServer(failing(new TimeoutError()), 100)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('CONFIG GET failed: timed out: no answer from the server')
    expect(warnings[0]).not.toContain('failed: )')
  })

  it('quotes the server\'s refusal (managed Redis)', async () => {
    const { warnings } = await checkRedisServer(failing(new Error("ERR unknown command 'CONFIG'")), 100)
    expect(warnings[0]).toContain("CONFIG GET failed: ERR unknown command 'CONFIG'")
  })
})
