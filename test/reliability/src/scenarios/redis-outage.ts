import { startRedis } from '@fastify-acme/harness'
import { setTimeout as sleep } from 'node:timers/promises'
import { allServed, startApps, stopApps, testName } from '../lib/apps.js'
import { logDirFor, pebbleRoot, proxyFor, tag, type ScenarioEnv } from '../lib/env.js'
import { handshakeLoad } from '../lib/load.js'
import { registerSecrets } from './cluster.js'

export interface RedisOutageParams {
  processes: number
  names: number
  outageMs: number
}

export interface RedisOutageResult {
  handshakes: number
  failedHandshakes: number
  failures: Array<{ at: number, app: string, name: string, error: string }>
  /** handshakes completed while Redis was down */
  handshakesDuringOutage: number
  /** newOrder requests that reached the CA while Redis was down (the storage check must stop them) */
  ordersDuringOutage: number
  /** the code an obtain() during the outage failed with */
  outageObtainCode: string | null
  /** Redis back up to a new certificate obtained and served */
  resumedAfterMs: number | null
  crashed: string[]
}

/**
 * Apps on a dedicated Redis serve their names under continuous handshake load; Redis is
 * SIGKILLed for `outageMs`, then started again on the same port and data (AOF, fsync always).
 * Cached names must keep being served, an obtain() during the outage must fail with a code and
 * place no order, and issuance must work again once Redis is back.
 */
export async function runRedisOutage (env: ScenarioEnv, params: RedisOutageParams): Promise<RedisOutageResult> {
  const run = tag('')
  const redis = await startRedis({ appendonly: true })
  const proxy = await proxyFor(env.pebble)
  const names = Array.from({ length: params.names }, (_, i) => testName('r', i, run))
  const storageUrl = `${redis.url}?namespace=outage-${run}`
  const lateName = testName('rlate', 0, run)
  const apps = await startApps(env, logDirFor(env, 'redis-outage'), params.processes, { directoryUrl: proxy.directoryUrl, storageUrl, names }, { point: [...names, lateName] })
  const load = { stop: async () => ({ handshakes: 0, failed: 0, failures: [] as RedisOutageResult['failures'] }) }
  try {
    await allServed(apps, names, 60_000)
    const root = await pebbleRoot(env)
    const running = handshakeLoad(apps, names, root)
    load.stop = running.stop
    await sleep(1000)

    await redis.kill('SIGKILL')
    const down = { at: Date.now(), handshakes: running.stats.handshakes, orders: proxy.count('newOrder') }
    const during = await apps[0]!.command('obtain', { names: [lateName] }, params.outageMs + 30_000)
    await sleep(Math.max(0, down.at + params.outageMs - Date.now()))
    const outage = { handshakes: running.stats.handshakes - down.handshakes, orders: proxy.count('newOrder') - down.orders }
    await redis.restart()
    const upAt = Date.now()

    let resumedAfterMs: number | null = null
    for (let attempt = 0; attempt < 30 && resumedAfterMs === null; attempt++) {
      const reply = await apps[0]!.command('obtain', { names: [lateName] }, 30_000)
      if (reply.serial) resumedAfterMs = Date.now() - upAt
      else await sleep(1000)
    }
    await sleep(1000)
    const stats = await running.stop()
    await registerSecrets(env, storageUrl, 'redis-outage')
    return {
      handshakes: stats.handshakes,
      failedHandshakes: stats.failed,
      failures: stats.failures,
      handshakesDuringOutage: outage.handshakes,
      ordersDuringOutage: outage.orders,
      outageObtainCode: (during.code as string | null) ?? null,
      resumedAfterMs,
      crashed: apps.filter((a) => !a.alive).map((a) => a.id),
    }
  } finally {
    await load.stop()
    await stopApps(apps)
    await proxy.close()
    await redis.stop()
  }
}
