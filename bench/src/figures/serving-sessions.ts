import { freePort, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { runLoad, sweepNames, type LoadResult } from '../lib/load.js'
import { spawnApp, type Child } from '../lib/proc.js'
import { quantile } from '../lib/stats.js'
import { handshakeOnce } from '../lib/tls-probe.js'
import type { BenchContext } from '../report/result.js'
import { SEEDED, type Seed } from './seed.js'

/** The server runs on one core, the load generators on the other. */
export const SERVER_CPU = 0
export const LOAD_CPU = 1
/** Load: generator processes x connections in flight in each, warm-up and measured window. */
export const LOAD = { procs: 3, concurrency: 8, warmupMs: 500, durationMs: 2500 }
/** runs of the maxContexts 10,000 extra (each sweeps all 10,000 names first, ~15 s) */
const MAX_CONTEXTS_RUNS = 3

export interface Session {
  kind: 'plain' | 'ours' | 'ours-max-contexts-10000' | 'ours-empty'
  listenMs: number
  /** first handshake of a random name right after listening (ours with certificates only) */
  firstHandshakeMs?: number
  /** spawn to every certificate loaded from storage */
  loadedMs?: number
  load?: Omit<LoadResult, 'latencies' | 'samples'> & { p50: number, p99: number }
  /** share of one core the server used during the window (1 = saturated) */
  serverCpu?: number
  /** server CPU time per completed handshake in the window, in µs (1e6 / this = capacity of one core) */
  cpuUsPerHandshake?: number
  /** RSS after forced GCs, at the end of the session */
  rss: number
  memory?: NodeJS.MemoryUsage
}

export interface ServingSamples {
  plain: Session[]
  ours: Session[]
  oursMax: Session[]
  empty: Session[]
}

const now = () => performance.timeOrigin + performance.now()

/**
 * ctx.runs rounds of: plain https, ours (default maxContexts), ours with maxContexts 10,000
 * (first a sweep over all 10,000 names, so every context is built; only in the first
 * MAX_CONTEXTS_RUNS rounds), and ours with no certificate (the memory baseline). Each is a
 * fresh process.
 */
export async function measureServing (ctx: BenchContext, seed: Seed): Promise<ServingSamples> {
  const samples: ServingSamples = { plain: [], ours: [], oursMax: [], empty: [] }
  for (let run = 0; run < ctx.runs; run++) {
    samples.plain.push(await session(seed, 'plain'))
    samples.ours.push(await session(seed, 'ours'))
    if (run < MAX_CONTEXTS_RUNS) samples.oursMax.push(await session(seed, 'ours-max-contexts-10000'))
    samples.empty.push(await session(seed, 'ours-empty'))
    const [p, o, m] = [samples.plain[run]!, samples.ours[run]!, samples.oursMax[run]]
    ctx.log(`  serving run ${run + 1}/${ctx.runs}: plain ${Math.round(p.load!.rate)}/s (cpu ${p.serverCpu}, ${p.cpuUsPerHandshake} µs/handshake), ` +
      `ours ${Math.round(o.load!.rate)}/s (cpu ${o.serverCpu}, ${o.cpuUsPerHandshake} µs)` +
      (m ? `, ours maxContexts 10k ${Math.round(m.load!.rate)}/s (cpu ${m.serverCpu}, ${m.cpuUsPerHandshake} µs)` : '') +
      `; listen ${Math.round(o.listenMs)} ms, first handshake ${o.firstHandshakeMs?.toFixed(1)} ms, all loaded ${Math.round(o.loadedMs!)} ms; ` +
      `rss ${mb(samples.empty[run]!.rss)} / ${mb(o.rss)}${m ? ` / ${mb(m.rss)}` : ''} MB`)
  }
  return samples
}

async function session (seed: Seed, kind: Session['kind']): Promise<Session> {
  const host = uniqueLoopbackAddress()
  const port = await freePort(host)
  const server = kind === 'plain'
    ? spawnApp('plain-https-server.mjs', { cpu: SERVER_CPU, nodeFlags: ['--expose-gc'], config: { bundle: seed.bundleFile, host, port } })
    : spawnApp('ours-sni-server.mjs', {
      cpu: SERVER_CPU,
      nodeFlags: ['--expose-gc'],
      config: { dir: seed.dir, count: kind === 'ours-empty' ? 0 : SEEDED, host, port, ...(kind === 'ours-max-contexts-10000' ? { maxContexts: SEEDED } : {}) },
    })
  try {
    const listening = await server.waitFor('listening', 60_000)
    const out: Session = { kind, listenMs: listening.receivedAt - server.spawnedAt, rss: 0 }
    if (kind === 'ours' || kind === 'ours-max-contexts-10000') {
      const servername = `h${String(Math.floor(Math.random() * SEEDED)).padStart(5, '0')}.bench.test`
      out.firstHandshakeMs = (await handshakeOnce({ host, port, servername, ca: seed.root })).ms
    }
    if (kind === 'ours-max-contexts-10000') {
      // every name once, chain and name verified: all 10,000 contexts built, the steady state this
      // setting buys (names not loaded yet load on demand, beside the background load)
      const swept = await sweepNames({ host, port, count: SEEDED, procs: LOAD.procs, concurrency: LOAD.concurrency, cpu: LOAD_CPU, ca: seed.root })
      if (swept.failures > 0) throw new Error(`sweep: ${swept.failures} failed handshakes ${JSON.stringify(swept.errors)}`)
    }
    out.loadedMs = (await server.waitFor('loaded', 180_000)).receivedAt - server.spawnedAt
    if (kind !== 'ours-empty') Object.assign(out, await measureLoad(server, host, port))
    out.memory = (await server.command('memory')).memory as NodeJS.MemoryUsage
    out.rss = out.memory.rss
    return out
  } finally {
    await server.stop()
  }
}

async function measureLoad (server: Child, host: string, port: number): Promise<Pick<Session, 'load' | 'serverCpu' | 'cpuUsPerHandshake'>> {
  let before: { user: number, system: number, at: number } | undefined
  let after: typeof before
  const cpu = async () => {
    const reply = await server.command('cpu')
    const usage = reply.cpu as NodeJS.CpuUsage
    return { user: usage.user, system: usage.system, at: now() }
  }
  const { latencies, samples: _, ...load } = await runLoad({
    host,
    port,
    count: SEEDED,
    ...LOAD,
    cpu: LOAD_CPU,
    onWindow: { start: async () => { before = await cpu() }, end: async () => { after = await cpu() } },
  })
  if (load.failures > 0) throw new Error(`${load.failures} failed handshakes under load: ${JSON.stringify(load.errors)}`)
  const cpuUs = after!.user + after!.system - before!.user - before!.system
  return {
    load: { ...load, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) },
    serverCpu: Math.round(cpuUs / 1000 / (after!.at - before!.at) * 100) / 100,
    cpuUsPerHandshake: Math.round(cpuUs / Math.max(1, load.rate * (after!.at - before!.at) / 1000)),
  }
}

function mb (bytes: number): number {
  return Math.round(bytes / 1e5) / 10
}
