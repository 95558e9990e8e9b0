import { AcmeError, ErrorCodes } from '../errors.js'
import { sleep } from './transport.js'

/** A client-side limit on new orders per account: at most `orders` in any `windowMs`. */
export interface OrderRateLimit {
  orders: number
  windowMs: number
}

/** Let's Encrypt's own new-orders limit per account (300 per 3 hours). */
export const DEFAULT_ORDER_RATE_LIMIT: OrderRateLimit = { orders: 300, windowMs: 3 * 3600_000 }

/** Sliding-window limiter: take() waits for a free slot, or throws when it would wait too long. */
export class SlidingWindowLimiter {
  private readonly times: number[] = []

  constructor (private readonly limit: OrderRateLimit, private readonly maxWaitMs = 60_000) {}

  async take (signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now()
      while (this.times.length > 0 && this.times[0]! <= now - this.limit.windowMs) this.times.shift()
      if (this.times.length < this.limit.orders) {
        this.times.push(now)
        return
      }
      const wait = this.times[0]! + this.limit.windowMs - now
      if (wait > this.maxWaitMs) {
        throw new AcmeError(ErrorCodes.RATE_LIMITED,
          `client-side order limit reached (${this.limit.orders} per ${this.limit.windowMs / 1000} s)`, { retryAfter: new Date(now + wait), retryable: true })
      }
      await sleep(wait, signal)
    }
  }
}
