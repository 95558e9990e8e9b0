import { randomBytes } from 'node:crypto'
import tls from 'node:tls'
import { startApps, stopApps } from '../lib/apps.js'
import { freshStorageUrl, logDirFor, pebbleRoot, pointName, proxyFor, tag, type ScenarioEnv } from '../lib/env.js'
import { handshake, pool } from '../lib/tls-probe.js'
import { registerSecrets } from './cluster.js'

export interface OnDemandParams {
  handshakes: number
}

export interface OnDemandResult {
  /** two floods of `params.handshakes` each */
  handshakes: number
  /** denied handshakes that completed anyway (there is no certificate to offer) */
  completed: number
  /** newOrder requests for denied names: must be 0 */
  deniedOrders: number
  /** requests of any kind at the CA during the denied flood */
  caRequestsDuringFlood: number
  /** the allowed name, asked for after the flood, got a certificate */
  allowedServed: boolean
  rssBeforeMb: number
  /** after the first flood */
  rssAfterMb: number
  /** after a second flood of as many names */
  rssAfterSecondMb: number
  heapUsedBeforeMb: number
  heapUsedAfterMb: number
  heapUsedAfterSecondMb: number
  crashed: string[]
}

const SUFFIX = '.allowed.example.test'

/**
 * An app with on-demand TLS whose allow() admits only `*.allowed.example.test` takes two floods of
 * handshakes with random SNI names: none may reach the CA, and memory (after GC) stays flat.
 * Then one allowed name gets its certificate, to show the gate is not simply closed.
 */
export async function runOnDemand (env: ScenarioEnv, params: OnDemandParams): Promise<OnDemandResult> {
  const run = tag('')
  const proxy = await proxyFor(env.pebble)
  const storageUrl = await freshStorageUrl(env, 'fs')
  const [app] = await startApps(env, logDirFor(env, 'on-demand'), 1, { directoryUrl: proxy.directoryUrl, storageUrl, names: [], onDemandSuffix: SUFFIX }, { nodeFlags: ['--expose-gc'] })
  try {
    const mb = (n: unknown) => Math.round(Number(n) / 1048576 * 10) / 10
    const warm = Array.from({ length: 50 }, () => deniedName())
    await pool(warm, 10, (name) => attempt(app!.config.address, app!.port, name))
    const before = (await app!.command('memory')).memory as NodeJS.MemoryUsage
    const requestsBefore = proxy.requests.length
    const flood = async () => (await pool(Array.from({ length: params.handshakes }, () => deniedName()), 20, (name) => attempt(app!.config.address, app!.port, name))).filter(Boolean).length
    let completed = await flood()
    const after = (await app!.command('memory')).memory as NodeJS.MemoryUsage
    completed += await flood() // a second flood: bounded memory stays where the first one left it
    const afterSecond = (await app!.command('memory')).memory as NodeJS.MemoryUsage
    const caRequestsDuringFlood = proxy.requests.length - requestsBefore
    const deniedOrders = proxy.count('newOrder')

    const allowed = `ok-${run}${SUFFIX}`
    await pointName(env, allowed, app!.config.address)
    const served = await handshake(app!.config.address, app!.port, allowed, await pebbleRoot(env), 30_000)
    await registerSecrets(env, storageUrl, 'on-demand')
    return {
      handshakes: params.handshakes * 2,
      completed,
      deniedOrders,
      caRequestsDuringFlood,
      allowedServed: served.ok,
      rssBeforeMb: mb(before.rss),
      rssAfterMb: mb(after.rss),
      rssAfterSecondMb: mb(afterSecond.rss),
      heapUsedBeforeMb: mb(before.heapUsed),
      heapUsedAfterMb: mb(after.heapUsed),
      heapUsedAfterSecondMb: mb(afterSecond.heapUsed),
      crashed: app!.alive ? [] : [app!.id],
    }
  } finally {
    await stopApps([app!])
    await proxy.close()
  }
}

function deniedName (): string {
  return `${randomBytes(8).toString('hex')}.denied.example.test`
}

/** A handshake that is expected to fail; true if it completed. */
function attempt (host: string, port: number, servername: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false, timeout: 10_000 }, () => { socket.destroy(); resolve(true) })
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
    socket.on('error', () => resolve(false))
  })
}
