/** Limits how many async jobs run at once; the rest wait in FIFO order. */
export class Semaphore {
  private active = 0
  private readonly queue: Array<() => void> = []

  constructor (private readonly limit: number) {}

  async run<T> (job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve))
    else this.active++
    try {
      return await job()
    } finally {
      const next = this.queue.shift()
      if (next) next()
      else this.active--
    }
  }
}
