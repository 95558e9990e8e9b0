import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { spawnApp } from '../lib/proc.js'
import type { BenchContext } from '../report/result.js'

export const SEEDED = 10_000

/** The 10,000 stored certificates the serving figures start from. */
export interface Seed {
  dir: string
  /** the local CA root the seeded chains verify against */
  root: string
  /** one seeded bundle: the static certificate of the plain https peer */
  bundleFile: string
  ms: number
}

/** Writes SEEDED certificate bundles into a fresh fs storage dir (apps/seed-certs.mjs), once per bench run. */
export async function seedCertificates (ctx: BenchContext): Promise<Seed> {
  const dir = path.join(ctx.workDir, 'seed')
  mkdirSync(dir)
  const child = spawnApp('seed-certs.mjs', { args: [dir, String(SEEDED)], env: { UV_THREADPOOL_SIZE: '16' } })
  const code = await child.exit(300_000)
  if (code !== 0) throw new Error(`seeding failed (${code}): ${child.stderr.slice(-2000)}`)
  const out = JSON.parse(child.stdout) as { count: number, ms: number, names: string[], root: string }
  ctx.log(`  seeded ${out.count} certificates in ${out.ms} ms`)
  return { dir, root: out.root, bundleFile: path.join(dir, 'certificates', out.names[0]!, 'bundle.json'), ms: out.ms }
}
