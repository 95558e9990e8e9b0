import type { AppProcess } from './child.js'
import { handshake } from './tls-probe.js'

export interface LoadStats {
  handshakes: number
  failed: number
  /** the first few failures: when, where, why */
  failures: Array<{ at: number, app: string, name: string, error: string }>
}

/**
 * Continuous new-connection TLS handshakes from `workers` loops to random (app, name) pairs
 * among the live apps, until stop() is called.
 */
export function handshakeLoad (apps: AppProcess[], names: string[], ca: string, workers = 4): { stats: LoadStats, stop: () => Promise<LoadStats> } {
  const stats: LoadStats = { handshakes: 0, failed: 0, failures: [] }
  const state = { stopped: false }
  const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)]!
  const loops = Array.from({ length: workers }, async () => {
    while (!state.stopped) {
      const app = pick(apps.filter((a) => a.alive))
      const name = pick(names)
      const result = await handshake(app.config.address, app.port, name, ca)
      stats.handshakes++
      if (!result.ok) {
        stats.failed++
        if (stats.failures.length < 20) stats.failures.push({ at: Date.now(), app: app.id, name, error: result.error ?? '' })
      }
    }
  })
  return {
    stats,
    stop: async () => {
      state.stopped = true
      await Promise.all(loops)
      return stats
    },
  }
}
