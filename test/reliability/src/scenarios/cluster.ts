import { allServed, startApps, stopApps, testName } from '../lib/apps.js'
import { freshStorageUrl, logDirFor, openStorage, pebbleRoot, proxyFor, tag, type ScenarioEnv, type StorageKind } from '../lib/env.js'
import { addStoredSecrets } from '../lib/secrets.js'
import { handshake, pool } from '../lib/tls-probe.js'

export interface ClusterParams {
  storage: StorageKind
  processes: number
  names: number
  /** how long to wait for every process to serve every name */
  timeoutMs: number
}

export interface ClusterResult {
  storage: StorageKind
  /** newOrder requests that reached the CA (counted at the proxy) */
  orders: number
  /** newAccount requests: one account for the whole cluster */
  accounts: number
  /** name/process pairs whose handshake verified against Pebble's root */
  serving: number
  expectedServing: number
  /** names served with more than one serial across the processes */
  inconsistentNames: number
  /** orders per obtaining process, by app id */
  obtainedBy: Record<string, number>
  /** app processes that died on their own */
  crashed: string[]
  /** orders that failed ('failed' events), as `<app> <name>: <code> <message>` */
  failed: string[]
  /** name/process pairs whose handshake failed, as `<app> <name>: <why>` */
  unserved: string[]
  durationMs: number
}

/**
 * `processes` app processes manage the same `names` on one storage, all started at once. Each
 * name points at a random instance, so the CA validates wherever it lands. Exactly one order
 * per name must reach the CA, and every process must serve every name.
 */
export async function runCluster (env: ScenarioEnv, params: ClusterParams): Promise<ClusterResult> {
  const run = tag('')
  const logDir = logDirFor(env, `cluster-${params.storage}`)
  const proxy = await proxyFor(env.pebble)
  const storageUrl = await freshStorageUrl(env, params.storage)
  const names = Array.from({ length: params.names }, (_, i) => testName(`c${params.storage}`, i, run))
  const started = Date.now()
  const apps = await startApps(env, logDir, params.processes, { directoryUrl: proxy.directoryUrl, storageUrl, names, email: `ops-${run}@example.test` }, { point: names })
  try {
    await allServed(apps, names, params.timeoutMs)
    const durationMs = Date.now() - started
    const root = await pebbleRoot(env)
    const pairs = apps.flatMap((app) => names.map((name) => ({ app, name })))
    const results = await pool(pairs, 16, async ({ app, name }) => ({ app: app.id, name, ...await handshake(app.config.address, app.port, name, root) }))
    const serials = new Map<string, Set<string>>()
    for (const r of results) if (r.ok) serials.set(r.name, (serials.get(r.name) ?? new Set()).add(r.serial!))
    await registerSecrets(env, storageUrl, `cluster-${params.storage}`)
    const obtainedBy: Record<string, number> = {}
    for (const app of apps) obtainedBy[app.id] = app.events.filter((e) => e.event === 'obtained').length
    return {
      storage: params.storage,
      orders: proxy.count('newOrder'),
      accounts: proxy.count('newAccount'),
      serving: results.filter((r) => r.ok).length,
      expectedServing: pairs.length,
      inconsistentNames: [...serials.values()].filter((s) => s.size > 1).length,
      obtainedBy,
      crashed: apps.filter((a) => !a.alive).map((a) => a.id),
      failed: apps.flatMap((app) => app.events.filter((e) => e.event === 'failed')
        .map((e) => `${app.id} ${(e.names as string[])[0]}: ${String(e.code)} ${String(e.message)}`)),
      unserved: results.filter((r) => !r.ok).map((r) => `${r.app} ${r.name}: ${r.error?.trim() ?? 'no handshake'}`),
      durationMs,
    }
  } finally {
    await stopApps(apps)
    await proxy.close()
  }
}

/** Registers every key the apps stored, for the secrets-in-logs scan. */
export async function registerSecrets (env: ScenarioEnv, storageUrl: string, label: string): Promise<void> {
  const storage = await openStorage(env, storageUrl)
  try {
    await addStoredSecrets(storage, label)
  } finally {
    await storage.close?.()
  }
}
