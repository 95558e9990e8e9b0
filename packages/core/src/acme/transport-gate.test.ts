import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
})
