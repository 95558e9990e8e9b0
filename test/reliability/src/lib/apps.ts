import { uniqueLoopbackAddress } from '@fastify-acme/harness'
import path from 'node:path'
import type { AppConfig } from '../app/config.js'
import { AppProcess } from './child.js'
import { appEnv, pointName, type ScenarioEnv } from './env.js'

export type AppOptions = Omit<AppConfig, 'id' | 'address' | 'httpPort' | 'directoryUrl' | 'caBundle' | 'logFile'> &
  Partial<Pick<AppConfig, 'directoryUrl' | 'caBundle' | 'httpPort'>>

/**
 * Starts `count` app processes, each on its own loopback address at Pebble's HTTP-01 port, and
 * makes them listen together once all are ready. An app orders as soon as it listens, and the CA
 * validates wherever the name points: so the names in `point` are pointed at a random app
 * first (an unpointed name resolves to 127.0.0.1), and no app listens before every app's
 * HTTP-01 listener is up. Either race lost on a slow machine fails an order, and the next
 * attempt is a minute away.
 */
export async function startApps (
  env: ScenarioEnv, logDir: string, count: number, opts: AppOptions, extra: { point?: string[], nodeFlags?: string[] } = {}
): Promise<AppProcess[]> {
  const addresses = Array.from({ length: count }, () => uniqueLoopbackAddress())
  await Promise.all((extra.point ?? []).map((name) => pointName(env, name, addresses[Math.floor(Math.random() * count)]!)))
  const apps = addresses.map((address, i) => new AppProcess({
    id: `app${i}`,
    address,
    httpPort: env.pebble.httpPort,
    directoryUrl: env.pebble.directoryUrl,
    caBundle: env.pebble.caBundle,
    logFile: path.join(logDir, `app${i}-${Date.now().toString(36)}.log`),
    ...opts,
  }, { env: appEnv(env), ...(extra.nodeFlags ? { nodeFlags: extra.nodeFlags } : {}) }))
  try {
    await Promise.all(apps.map((app) => app.waitFor('ready', undefined, 60_000)))
    await Promise.all(apps.map((app) => app.command('listen')))
  } catch (err) {
    await stopApps(apps)
    throw err
  }
  return apps
}

/** Waits until every app serves every name in `names` ('updated' for each), or the timeout; never rejects. */
export async function allServed (apps: AppProcess[], names: string[], timeoutMs: number): Promise<void> {
  await Promise.all(apps.map((app) => app.until('every name served', () => {
    const served = app.served()
    return names.every((n) => served.has(n))
  }, timeoutMs).catch(() => {})))
}

/** Closes every app still running (SIGKILL after 15 s). */
export async function stopApps (apps: AppProcess[]): Promise<void> {
  await Promise.all(apps.map((a) => a.stop()))
}

/** A name under a test domain, unique per run. */
export function testName (label: string, i: number, run: string): string {
  return `${label}${i}-${run}.example.test`
}
