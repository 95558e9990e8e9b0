import { uniqueLoopbackAddress } from '@fastify-acme/harness'
import { mkdtempSync } from 'node:fs'
import path from 'node:path'
import type { AcmeLab } from '../lib/acme-env.js'
import { figureOf, summarize } from '../lib/stats.js'
import type { IssuancePeer } from '../peers/types.js'
import type { BenchContext, BenchResult } from '../report/result.js'

/** Per system (peer key): the time of each run, in ms. */
export type IssuanceTimes = Record<string, number[]>

/** Per system: why runs failed (a failed run has no time; it is reported, never retried silently). */
export type IssuanceFailures = Record<string, string[]>

/**
 * Runs every peer `ctx.runs` times, interleaved (run 1 of each, then run 2 of each, in a
 * rotating order) so that machine noise falls on all of them alike. Each run gets a fresh
 * Pebble, fresh storage, a fresh loopback address and fresh names (`count` of them).
 */
export async function measureIssuance (ctx: BenchContext, lab: AcmeLab, peers: IssuancePeer[], count: number, label: string): Promise<{ times: IssuanceTimes, failures: IssuanceFailures }> {
  const times: IssuanceTimes = Object.fromEntries(peers.map((p) => [p.key, []]))
  const failures: IssuanceFailures = {}
  for (let run = 0; run < ctx.runs; run++) {
    const order = peers.map((_, i) => peers[(i + run) % peers.length]!)
    for (const peer of order) {
      const dir = mkdtempSync(path.join(ctx.workDir, `${label}-${peer.key}-`))
      const address = uniqueLoopbackAddress()
      const names = Array.from({ length: count }, (_, i) => `${peer.key}-${label}-${run}-${i}.bench.test`)
      const env = await lab.freshCa()
      try {
        await env.point(names, address)
        const ms = await peer.issue({ env, names, address, dir })
        times[peer.key]!.push(ms)
        ctx.log(`  ${label} run ${run + 1}/${ctx.runs} ${peer.key}: ${Math.round(ms)} ms`)
      } catch (err) {
        const wedged = await env.wedged()
        const message = `${wedged ? `${wedged}\n` : ''}${(err as Error).message.slice(0, 2000)}`
        ;(failures[peer.key] ??= []).push(message)
        ctx.log(`  ${label} run ${run + 1}/${ctx.runs} ${peer.key}: FAILED ${message}`)
      } finally {
        await env.stop()
      }
    }
  }
  return { times, failures }
}

/**
 * One issuance figure: ours (median, min, max) beside each peer, with failed runs listed.
 * `met` gets our median and the peers' medians; a failed run of ours never meets a target.
 */
export function issuanceResult (name: string, times: IssuanceTimes, failures: IssuanceFailures, target: string, met: (ours: number, peers: Record<string, number>) => boolean, note: string): BenchResult {
  const s = summarize(times.ours!, 0)
  const { peers, peerRanges } = peerFigures(times)
  return {
    name,
    unit: 'ms',
    ...figureOf(s),
    peers,
    peerRanges,
    ...(Object.keys(failures).length > 0 ? { failedRuns: failures } : {}),
    target,
    met: !failures.ours && met(s.median, peers),
    note,
  }
}

/** The peers' medians and ranges, as results carry them. */
function peerFigures (times: IssuanceTimes, digits = 0) {
  const peers: Record<string, number> = {}
  const peerRanges: Record<string, { min: number, max: number, runs: number }> = {}
  for (const [key, values] of Object.entries(times)) {
    if (key === 'ours') continue
    const s = summarize(values, digits)
    peers[key] = s.median
    peerRanges[key] = { min: s.min, max: s.max, runs: s.runs }
  }
  return { peers, peerRanges }
}
