import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AcmeError, ErrorCodes } from '../errors.js'
import { silentLogger } from '../logger.js'
import { withRetries } from './client.js'
import { Transport } from './transport.js'

describe('Transport Retry-After gate', () => {
  const arrivals: number[] = []
  let server: http.Server
  let url: string
  beforeAll(async () => {
    server = http.createServer((_req, res) => { arrivals.push(Date.now()); res.end() })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  })
  afterAll(async () => { await new Promise((resolve) => server.close(resolve)) })

  it('holds a waiting request until the latest Retry-After, even one that came in while it waited', async () => {
    const transport = new Transport()
    try {
      const started = Date.now()
      transport.deferUntil(new Date(started + 200))
      const waiting = transport.request(url, 'GET')
      await new Promise((resolve) => setTimeout(resolve, 50))
      transport.deferUntil(new Date(started + 600)) // a 429 answered to another request meanwhile
      await waiting
      expect(arrivals.at(-1)! - started).toBeGreaterThanOrEqual(590)
    } finally {
      transport.close()
    }
  })

  /** One request answered 429 with a Retry-After `retryAfterMs` from now, after `attempts` attempts. */
  const rateLimited = (transport: Transport, retryAfterMs: number, attempts: number) => expect(withRetries(
    { attempts, baseDelayMs: 10, maxInlineWaitMs: 60_000 }, transport, undefined, silentLogger, 'POST newOrder',
    () => Promise.reject(new AcmeError(ErrorCodes.RATE_LIMITED, 'too many new orders', { status: 429, retryAfter: new Date(Date.now() + retryAfterMs), retryable: true }))
  )).rejects.toMatchObject({ code: ErrorCodes.RATE_LIMITED })

  it('a 429 on the last attempt still holds every other request until its Retry-After', async () => {
    const transport = new Transport()
    try {
      const started = Date.now()
      await rateLimited(transport, 400, 1)
      await transport.request(url, 'GET') // another order's request, made right after
      expect(arrivals.at(-1)! - started).toBeGreaterThanOrEqual(390)
    } finally {
      transport.close()
    }
  })

  it('a Retry-After longer than the in-request wait goes back to the caller and holds nothing', async () => {
    const transport = new Transport()
    try {
      const started = Date.now()
      await rateLimited(transport, 3_600_000, 5)
      await transport.request(url, 'GET')
      expect(arrivals.at(-1)! - started).toBeLessThan(1000)
    } finally {
      transport.close()
    }
  })
})
