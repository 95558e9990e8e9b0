import { startApps, stopApps, testName } from '../lib/apps.js'
import type { AppProcess } from '../lib/child.js'
import { freshStorageUrl, logDirFor, pebbleRoot, pointName, proxyFor, tag, type ScenarioEnv, type StorageKind } from '../lib/env.js'
import { handshake } from '../lib/tls-probe.js'
import { registerSecrets } from './cluster.js'

export interface KillHolderParams {
  storage: StorageKind
  processes: number
  /** the issuance lock's lease (lockTtlMs) */
  ttlMs: number
  /** how long the proxy holds the holder's challenge POST, so the kill lands mid-order */
  delayMs: number
}

export interface KillHolderResult {
  storage: StorageKind
  ttlMs: number
  /** SIGKILL to another instance's 'obtained' */
  recoveredMs: number | null
  /** SIGKILL to another instance holding the lock */
  lockTakenAfterMs: number | null
  /** the survivor's order itself */
  orderMs: number | null
  /** newOrder requests at the CA: the abandoned one and the one that completed */
  orders: number
  /** surviving instances serving the certificate afterwards */
  servedBySurvivors: number
  survivors: number
  crashed: string[]
}

/**
 * Every instance manages one name. The first to take the issuance lock has its challenge POST
 * held at the proxy; once that request has arrived it is SIGKILLed, with the order created and
 * its token presented. The name is pointed at a survivor (as a load balancer would), and one
 * survivor must take the lock over after the lease runs out and complete the certificate.
 */
export async function runKillHolder (env: ScenarioEnv, params: KillHolderParams): Promise<KillHolderResult> {
  const run = tag('')
  const name = testName(`k${params.storage}`, 0, run)
  const proxy = await proxyFor(env.pebble)
  proxy.inject({ resource: 'challenge', method: 'POST', action: { delayMs: params.delayMs } })
  const storageUrl = await freshStorageUrl(env, params.storage)
  const apps = await startApps(env, logDirFor(env, `kill-holder-${params.storage}`), params.processes, {
    directoryUrl: proxy.directoryUrl, storageUrl, names: [name], lockTtlMs: params.ttlMs,
  }, { point: [name] })
  try {
    const holder = await Promise.race(apps.map((app) => app.waitFor('obtaining', undefined, 30_000).then(() => app)))
    await until(() => proxy.requests.some((r) => r.resource === 'challenge' && r.method === 'POST'), 30_000)
    holder.kill('SIGKILL')
    const killedAt = Date.now()
    const survivors = apps.filter((a) => a !== holder)
    await pointName(env, name, survivors[0]!.config.address)
    const obtained = await Promise.race(survivors.map((app) => app.waitFor('obtained', undefined, params.ttlMs + 20_000).then((e) => ({ app, e }))))
      .catch(() => undefined)
    const locked = obtained?.app.events.find((e) => e.event === 'locked' && e.receivedAt >= killedAt)
    await registerSecrets(env, storageUrl, `kill-holder-${params.storage}`)
    let servedBySurvivors = 0
    if (obtained) {
      await Promise.all(survivors.map((app) => app.until('served', () => app.served().has(name), 10_000).catch(() => {})))
      const root = await pebbleRoot(env)
      for (const app of survivors) if ((await handshake(app.config.address, app.port, name, root)).ok) servedBySurvivors++
    }
    return {
      storage: params.storage,
      ttlMs: params.ttlMs,
      recoveredMs: obtained ? obtained.e.receivedAt - killedAt : null,
      lockTakenAfterMs: locked ? locked.receivedAt - killedAt : null,
      orderMs: obtained ? Number(obtained.e.durationMs) : null,
      orders: proxy.count('newOrder'),
      servedBySurvivors,
      survivors: survivors.length,
      crashed: crashedOf(survivors),
    }
  } finally {
    await stopApps(apps)
    await proxy.close()
  }
}

function crashedOf (apps: AppProcess[]): string[] {
  return apps.filter((a) => !a.alive).map((a) => a.id)
}

async function until (check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
