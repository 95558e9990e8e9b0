// fastify-acme serving certificates from an fs storage through acmeHttps()'s SNI path: the
// 10,000 seeded names (`count`), or `names` obtained from the embedded local CA at start.
// BENCH_CONFIG = {"dir","count"|"names","host","port","maxContexts"?,"storage"?: "memory"} (memory: the core's
// in-process storage instead of fs in `dir`, to measure renewals without durable writes)
// Events: listening, loaded (every certificate served). Commands: cpu, memory, rotate.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { memoryStorage } from '@fastify-acme/core'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'
import { commonCommands, send, serveCommands } from './lib/control.mjs'
import { benchName } from './lib/names.mjs'

const config = JSON.parse(process.env.BENCH_CONFIG)
const names = config.names ?? Array.from({ length: config.count }, (_, i) => benchName(i))
const now = () => performance.timeOrigin + performance.now()

const app = Fastify({ https: acmeHttps() })
app.get('/', async () => 'ok')
await app.register(fastifyAcme, {
  ...(names.length > 0 ? { domains: names.map((name) => [name]) } : {}),
  directoryUrl: 'local',
  storage: config.storage === 'memory' ? memoryStorage() : fsStorage({ dir: config.dir }),
  challenges: { http01: false },
  ...(config.maxContexts ? { tls: { maxContexts: config.maxContexts } } : {}),
})

let served = 0
const onUpdated = () => {
  if (++served < names.length) return
  app.acme.off('updated', onUpdated)
  send('loaded')
}
app.acme.on('updated', onUpdated)
await app.listen({ host: config.host, port: config.port })
send('listening')
if (names.length === 0) send('loaded')

serveCommands({
  ...commonCommands,
  root: async () => ({ root: await app.acme.localRootCertificate() }),
  /**
   * Forced renewals through the plugin's public API, round robin over `names`: from `startAt`
   * (ms since the epoch), `cycles` times `onMs` of one renewal every `intervalMs` (each starts on
   * schedule, or as soon as the previous one is done), then `offMs` of none. Also reports the
   * event loop's delay (p99 and max) in each rotating window (renewals + `settleMs`) and quiet window.
   */
  async rotate ({ names: rotated, intervalMs, onMs, offMs, settleMs, cycles, startAt }) {
    const rotations = []
    const errors = []
    const eventLoop = { rotating: [], quiet: [] }
    const delay = monitorEventLoopDelay({ resolution: 1 })
    delay.enable()
    const take = (kind) => { eventLoop[kind].push({ p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 }); delay.reset() }
    const until = (at) => sleep(Math.max(0, at - now()))
    const perCycle = Math.round(onMs / intervalMs)
    for (let cycle = 0; cycle < cycles; cycle++) {
      const from = startAt + cycle * (onMs + offMs)
      await until(from)
      if (cycle > 0) take('quiet')
      else delay.reset()
      for (let k = 0; k < perCycle; k++) {
        await until(from + k * intervalMs)
        const name = rotated[(cycle * perCycle + k) % rotated.length]
        const startedAt = now()
        try {
          const info = await app.acme.renew(name, { force: true })
          rotations.push({ name, startedAt, endedAt: now(), serial: info.serial })
        } catch (err) {
          errors.push(`${name}: ${err.message}`)
        }
      }
      await until(from + onMs)
      await sleep(settleMs)
      take('rotating')
    }
    await until(startAt + cycles * (onMs + offMs))
    take('quiet')
    delay.disable()
    return { rotations, errors, eventLoop }
  },
})
