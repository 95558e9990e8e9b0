import { freePort, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { mkdtempSync } from 'node:fs'
import path from 'node:path'
import { runLoad } from '../lib/load.js'
import { spawnApp, type AppEvent } from '../lib/proc.js'
import { figureOf, quantile, summarize } from '../lib/stats.js'
import { handshakeOnce } from '../lib/tls-probe.js'
import type { BenchContext, BenchResult } from '../report/result.js'
import { LOAD_CPU, SERVER_CPU } from './serving-sessions.js'

const NAMES = Array.from({ length: 10 }, (_, i) => `rotate-${i}.bench.test`)
/** per run: CYCLES x (ON_MS with a renewal every INTERVAL_MS, then OFF_MS with none) */
const INTERVAL_MS = 100
const ON_MS = 1000
const OFF_MS = 1500
const CYCLES = 5
/** after a rotating window, handshakes still count as rotating for this long (the queue it built drains) */
const SETTLE_MS = 500
/** open loop: generators x new connections per second each, chains verified against the local CA */
const LOAD = { procs: 2, rate: 100, warmupMs: 500 }
const MIN_ROTATIONS = 100
const P99_RATIO_TARGET = 1.2
/** runs of the extra with the core's in-process storage (renewals without durable writes) */
const MEMORY_RUNS = 3

export interface Rotation { name: string, startedAt: number, endedAt: number, serial: string }

/** One run: what the chart needs as well as the figures. */
export interface ReloadRun {
  /** [end time, latency ms] of every handshake in the window */
  samples: Array<[number, number]>
  /** [from, to] of each rotating window: from its first renewal to SETTLE_MS after its last one ended (or after ON_MS) */
  rotating: Array<[number, number]>
  rotations: Rotation[]
  quiet: { p50: number, p99: number, count: number }
  busy: { p50: number, p99: number, count: number }
  failures: number
  errors: Record<string, number>
  ratio: number
  /** the server's event loop delay per window, ms (monitorEventLoopDelay, 1 ms resolution) */
  eventLoop: { rotating: Array<{ p99: number, max: number }>, quiet: Array<{ p99: number, max: number }> }
}

/**
 * reload.*: a server with 10 certificates from the embedded local CA under one open-loop
 * handshake load. Windows alternate: for 1 s the server force-renews a certificate every 100 ms
 * (app.acme.renew(name, { force: true }): new key, CSR, certificate, stored, swapped into the
 * SNI cache), then 1.5 s with none. Handshakes that end while renewals run, or within 500 ms
 * after (the queue they built drains), count as rotating; the others as quiet. Same server, same
 * load, interleaved, so slow changes in the machine's background load fall on both alike.
 */
export async function measureReload (ctx: BenchContext): Promise<{ results: BenchResult[], runs: ReloadRun[] }> {
  const runs: ReloadRun[] = []
  const memoryRuns: ReloadRun[] = []
  const memoryCount = Math.min(MEMORY_RUNS, ctx.runs)
  const loop = (v: Array<{ max: number }>) => quantile(v.map((w) => w.max), 0.5).toFixed(1)
  const logRun = (label: string, r: ReloadRun) => ctx.log(`  ${label}: ${r.rotations.length} rotations, ${r.failures} failed handshakes of ${r.samples.length + r.failures}, ` +
    `p99 ${r.quiet.p99.toFixed(2)} ms quiet, ${r.busy.p99.toFixed(2)} ms rotating (x${r.ratio.toFixed(2)}); ` +
    `longest event-loop block per window ${loop(r.eventLoop.quiet)} ms quiet, ${loop(r.eventLoop.rotating)} ms rotating (medians)`)
  for (let run = 0; run < ctx.runs; run++) {
    const r = await reloadRun(ctx, 'fs')
    runs.push(r)
    logRun(`reload run ${run + 1}/${ctx.runs}`, r)
    if (run >= memoryCount) continue
    const m = await reloadRun(ctx, 'memory')
    memoryRuns.push(m)
    logRun(`reload run ${run + 1}/${memoryCount} (memory storage)`, m)
  }
  const memoryRatio = summarize(memoryRuns.map((r) => r.ratio), 2)
  const failed = runs.map((r) => r.failures)
  const rotations = runs.reduce((n, r) => n + r.rotations.length, 0)
  const ratio = summarize(runs.map((r) => r.ratio), 2)
  const all = (pick: (r: ReloadRun) => Array<[number, number]>) => runs.flatMap(pick).map(([, ms]) => ms)
  const inWindows = (r: ReloadRun, rotating: boolean) => r.samples.filter(([t]) => r.rotating.some(([a, b]) => t >= a && t < b) === rotating)
  const loadNote = `open loop ${LOAD.procs} x ${LOAD.rate} new connections/s over ${NAMES.length} names, chains verified against the local CA, server and generators on separate cores; ` +
    `${CYCLES} cycles per run of ${ON_MS} ms with a forced renewal every ${INTERVAL_MS} ms then ${OFF_MS} ms without; a handshake counts as rotating when it ends during renewals or within ${SETTLE_MS} ms after`
  return {
    runs,
    results: [
      {
        name: 'reload.failed_handshakes',
        unit: 'handshakes',
        ours: failed.reduce((a, b) => a + b, 0),
        min: Math.min(...failed),
        max: Math.max(...failed),
        runs: runs.length,
        rotations,
        handshakes: runs.reduce((n, r) => n + r.samples.length + r.failures, 0),
        target: `0 failed handshakes in >= ${MIN_ROTATIONS} rotations`,
        met: failed.every((n) => n === 0) && rotations >= MIN_ROTATIONS,
        note: `ours = failed handshakes summed over all runs (min/max per run); rotations = forced renewals (local CA) summed over all runs; after each run every rotated name must serve the serial of its last renewal. ${loadNote}`,
      },
      {
        name: 'reload.p99_ratio',
        unit: 'ratio',
        ...figureOf(ratio),
        p99Ms: { quiet: round2(quantile(all((r) => inWindows(r, false)), 0.99)), rotating: round2(quantile(all((r) => inWindows(r, true)), 0.99)) },
        serverEventLoopMaxMs: {
          quiet: round2(quantile(runs.flatMap((r) => r.eventLoop.quiet.map((w) => w.max)), 0.5)),
          rotating: round2(quantile(runs.flatMap((r) => r.eventLoop.rotating.map((w) => w.max)), 0.5)),
        },
        target: `<= ${P99_RATIO_TARGET} x the same load without rotation`,
        met: ratio.median <= P99_RATIO_TARGET,
        note: `per run: p99 of handshakes ending in rotating windows / p99 of those ending in quiet windows (same server, same load, interleaved); p99Ms pools every run; serverEventLoopMaxMs = median over windows of the longest event-loop delay the server saw in the window (how long renewals block it). ${loadNote}`,
      },
      {
        name: 'reload.p99_ratio_memory_storage',
        unit: 'ratio',
        ...figureOf(memoryRatio),
        failedHandshakes: memoryRuns.reduce((n, r) => n + r.failures, 0),
        target: 'none (extra)',
        met: null,
        note: `extra: reload.p99_ratio with the core's in-process memoryStorage() instead of fs storage, ${memoryCount} runs interleaved with the fs ones: the same renewals and swaps without the fs adapter's locks and durable (fsynced) writes, to show what the storage costs. Not a configuration for production (nothing survives a restart). ${loadNote}`,
      },
    ],
  }
}

async function reloadRun (ctx: BenchContext, storage: 'fs' | 'memory'): Promise<ReloadRun> {
  const host = uniqueLoopbackAddress()
  const port = await freePort(host)
  const dir = mkdtempSync(path.join(ctx.workDir, 'reload-'))
  const server = spawnApp('ours-sni-server.mjs', { cpu: SERVER_CPU, config: { dir, names: NAMES, host, port, storage } })
  try {
    await server.waitFor('loaded', 60_000)
    const { root } = await server.command('root') as unknown as { root: string }
    let reply: Promise<AppEvent> | undefined
    let windowStart = 0
    const load = await runLoad({
      host,
      port,
      names: NAMES,
      ...LOAD,
      durationMs: CYCLES * (ON_MS + OFF_MS),
      ca: root,
      record: true,
      cpu: LOAD_CPU,
      onStart: (start) => {
        windowStart = start
        reply = server.command('rotate', { names: NAMES, intervalMs: INTERVAL_MS, onMs: ON_MS, offMs: OFF_MS, settleMs: SETTLE_MS, cycles: CYCLES, startAt: start })
      },
    })
    const { rotations, errors, eventLoop } = (await reply!) as unknown as { rotations: Rotation[], errors: string[], eventLoop: ReloadRun['eventLoop'] }
    if (errors.length > 0) throw new Error(`renewals failed: ${errors.slice(0, 3).join('; ')}`)
    await checkServedSerial(host, port, root, rotations)
    const rotating = Array.from({ length: CYCLES }, (_, c): [number, number] => {
      const from = windowStart + c * (ON_MS + OFF_MS)
      const ends = rotations.filter((r) => r.startedAt >= from && r.startedAt < from + ON_MS + OFF_MS).map((r) => r.endedAt)
      return [from, Math.max(from + ON_MS, ...ends) + SETTLE_MS]
    })
    const isBusy = (t: number) => rotating.some(([a, b]) => t >= a && t < b)
    const busy = load.samples.filter(([t]) => isBusy(t)).map(([, ms]) => ms)
    const quiet = load.samples.filter(([t]) => !isBusy(t)).map(([, ms]) => ms)
    const stats = (v: number[]) => ({ p50: quantile(v, 0.5), p99: quantile(v, 0.99), count: v.length })
    return {
      samples: load.samples,
      rotating,
      rotations,
      quiet: stats(quiet),
      busy: stats(busy),
      failures: load.failures,
      errors: load.errors,
      ratio: quantile(busy, 0.99) / quantile(quiet, 0.99),
      eventLoop,
    }
  } finally {
    await server.stop()
  }
}

/** The last certificate renewed for each name is the one served now. */
async function checkServedSerial (host: string, port: number, ca: string, rotations: Rotation[]): Promise<void> {
  const last = new Map(rotations.map((r) => [r.name, r.serial]))
  for (const [servername, serial] of last) {
    const served = await handshakeOnce({ host, port, servername, ca })
    if (served.serial.toLowerCase() !== serial.toLowerCase()) throw new Error(`${servername}: serves serial ${served.serial}, last renewed ${serial}`)
  }
}

function round2 (n: number): number {
  return Math.round(n * 100) / 100
}
