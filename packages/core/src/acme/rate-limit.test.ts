import { describe, expect, it } from 'vitest'
import { SlidingWindowLimiter } from './rate-limit.js'

describe('SlidingWindowLimiter', () => {
  it('lets `orders` through at once, then waits for the window to slide', async () => {
    const limiter = new SlidingWindowLimiter({ orders: 3, windowMs: 300 })
    const started = Date.now()
    for (let i = 0; i < 3; i++) await limiter.take()
    expect(Date.now() - started).toBeLessThan(50)
    await limiter.take()
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
  })

  it('throws ERR_ACME_RATE_LIMITED with retryAfter instead of waiting longer than its bound', async () => {
    const limiter = new SlidingWindowLimiter({ orders: 1, windowMs: 3600_000 }, 1000)
    await limiter.take()
    await expect(limiter.take()).rejects.toMatchObject({ code: 'ERR_ACME_RATE_LIMITED', retryable: true })
  })

  it('stops waiting when aborted', async () => {
    const limiter = new SlidingWindowLimiter({ orders: 1, windowMs: 10_000 })
    await limiter.take()
    await expect(limiter.take(AbortSignal.timeout(50))).rejects.toMatchObject({ code: 'ERR_ACME_ABORTED' })
  })
})
