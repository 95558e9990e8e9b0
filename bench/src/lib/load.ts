import { spawnApp } from './proc.js'

export interface LoadOptions {
  host: string
  port: number
  /** names picked uniformly at random: an explicit list, or benchName(0..count-1) */
  names?: string[]
  count?: number
  /** load generator processes, and in each: connections in flight (closed loop) or new connections per second (open loop) */
  procs: number
  concurrency?: number
  rate?: number
  warmupMs: number
  durationMs: number
  /** verify the chain against these roots (and the name); none: no verification */
  ca?: string
  /** keep [time, latency] for every handshake (for charts) */
  record?: boolean
  /** pin the generators to this CPU */
  cpu?: number
  /** called at the window's start and end, e.g. to read the server's CPU clock */
  onWindow?: { start: () => Promise<void>, end: () => Promise<void> }
  /** called once the generators are spawned, with the window's start (ms since the epoch) */
  onStart?: (windowStart: number) => void
}

export interface LoadResult {
  /** handshakes per second in the window, all generators together */
  rate: number
  completed: number
  failures: number
  errors: Record<string, number>
  latencies: number[]
  samples: Array<[number, number]>
  windowStart: number
  windowEnd: number
}

const START_DELAY_MS = 400

/** Runs the generators (apps/handshake-load.mjs) together on one window and merges what they saw. */
export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  const startAt = performance.timeOrigin + performance.now() + START_DELAY_MS
  const config = {
    host: opts.host,
    port: opts.port,
    ...(opts.names ? { names: opts.names } : { count: opts.count }),
    ...(opts.rate ? { rate: opts.rate } : { concurrency: opts.concurrency }),
    startAt,
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    ...(opts.ca ? { ca: opts.ca } : {}),
    record: opts.record === true,
  }
  const generators = Array.from({ length: opts.procs }, () => spawnApp('handshake-load.mjs', { config, cpu: opts.cpu }))
  const windowStart = startAt + opts.warmupMs
  const windowEnd = windowStart + opts.durationMs
  opts.onStart?.(windowStart)
  if (opts.onWindow) {
    await sleepUntil(windowStart)
    await opts.onWindow.start()
    await sleepUntil(windowEnd)
    await opts.onWindow.end()
  }
  const results = await Promise.all(generators.map(async (child) => {
    const code = await child.exit(opts.warmupMs + opts.durationMs + 60_000)
    if (code !== 0) throw new Error(`load generator failed (${code}): ${child.stderr.slice(-1000)}`)
    return JSON.parse(child.stdout) as Omit<LoadResult, 'rate' | 'windowStart' | 'windowEnd'>
  }))
  const merged: LoadResult = { rate: 0, completed: 0, failures: 0, errors: {}, latencies: [], samples: [], windowStart, windowEnd }
  for (const r of results) {
    merged.completed += r.completed
    merged.failures += r.failures
    for (const [code, n] of Object.entries(r.errors)) merged.errors[code] = (merged.errors[code] ?? 0) + n
    for (const l of r.latencies) merged.latencies.push(l)
    for (const s of r.samples ?? []) merged.samples.push(s)
  }
  merged.rate = merged.completed / (opts.durationMs / 1000)
  return merged
}

function sleepUntil (at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - (performance.timeOrigin + performance.now()))))
}

/** Connects once to every benchName(0..count-1), split over `procs` generators; resolves with the failures. */
export async function sweepNames (opts: Pick<LoadOptions, 'host' | 'port' | 'procs' | 'cpu' | 'ca'> & { count: number, concurrency: number }): Promise<{ failures: number, errors: Record<string, number> }> {
  const startAt = performance.timeOrigin + performance.now()
  const per = Math.ceil(opts.count / opts.procs)
  const generators = Array.from({ length: opts.procs }, (_, i) => spawnApp('handshake-load.mjs', {
    cpu: opts.cpu,
    config: {
      host: opts.host,
      port: opts.port,
      concurrency: opts.concurrency,
      startAt,
      warmupMs: 0,
      durationMs: 3_600_000,
      sweep: [i * per, Math.min(opts.count, (i + 1) * per)],
      ...(opts.ca ? { ca: opts.ca } : {}),
    },
  }))
  const out = { failures: 0, errors: {} as Record<string, number> }
  for (const child of generators) {
    const code = await child.exit(300_000)
    if (code !== 0) throw new Error(`sweep generator failed (${code}): ${child.stderr.slice(-1000)}`)
    const r = JSON.parse(child.stdout) as { failures: number, errors: Record<string, number> }
    out.failures += r.failures
    for (const [code, n] of Object.entries(r.errors)) out.errors[code] = (out.errors[code] ?? 0) + n
  }
  return out
}
