import { startRedis, startS3Server } from '@fastify-acme/harness'
import { mkdtempSync } from 'node:fs'
import path from 'node:path'
import { spawnApp } from '../lib/proc.js'
import { figureOf, median, summarize } from '../lib/stats.js'
import type { BenchContext, BenchResult } from '../report/result.js'

const ITERATIONS = 100
const WARMUP = 10
const TARGETS: Record<string, number | undefined> = { redis: 2, fs: 5, s3: undefined }

/**
 * lock.redis_ms, lock.fs_ms, lock.s3_ms: lock() + release() on one uncontended lock, through
 * the built adapters in their own process (apps/lock-roundtrip.mjs). Each run is a fresh
 * process doing WARMUP + ITERATIONS round trips; ours = the median of the per-run medians.
 */
export async function measureLocks (ctx: BenchContext): Promise<BenchResult[]> {
  const redis = await startRedis()
  const s3 = await startS3Server()
  try {
    const configs: Record<string, () => Record<string, unknown>> = {
      redis: () => ({ url: redis.url }),
      fs: () => ({ dir: mkdtempSync(path.join(ctx.workDir, 'locks-')) }),
      s3: () => ({ s3: { ...s3.clientConfig(), bucket: `bench-${Math.random().toString(36).slice(2, 10)}` } }),
    }
    const perRun: Record<string, number[]> = { redis: [], fs: [], s3: [] }
    for (let run = 0; run < ctx.runs; run++) {
      for (const kind of Object.keys(configs)) {
        const child = spawnApp('lock-roundtrip.mjs', { config: { kind, iterations: ITERATIONS, warmup: WARMUP, ...configs[kind]!() } })
        const code = await child.exit(120_000)
        if (code !== 0) throw new Error(`lock round trips on ${kind} failed (${code}): ${child.stderr.slice(-2000)}`)
        perRun[kind]!.push(median((JSON.parse(child.stdout) as { samples: number[] }).samples))
      }
      ctx.log(`  locks run ${run + 1}/${ctx.runs}: ${Object.entries(perRun).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(2)} ms`).join(', ')}`)
    }
    return Object.entries(perRun).map(([kind, values]) => {
      const s = summarize(values, 3)
      const target = TARGETS[kind]
      return {
        name: `lock.${kind}_ms`,
        unit: 'ms',
        ...figureOf(s),
        target: target === undefined ? 'none (reported)' : `<= ${target} ms median`,
        met: target === undefined ? null : s.median <= target,
        note: `median of ${ITERATIONS} acquire+release round trips per run (after ${WARMUP} warm-up), median over runs; ${kind === 'redis' ? 'real redis-server on loopback (harness), node-redis' : kind === 'fs' ? 'fs adapter in a temp dir' : 'harness S3 server (conditional writes) through @aws-sdk/client-s3'}`,
      }
    })
  } finally {
    await s3.close()
    await redis.stop()
  }
}
