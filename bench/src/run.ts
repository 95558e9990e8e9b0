// `pnpm bench`: every SPEC section 6 figure, side by side with the peers, on this machine.
// Flags: --runs N (default 5), --only a,b (sections: locks, issuance, hundred, serving, reload).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os, { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { issuanceHundred } from './figures/issuance-hundred.js'
import { issuanceSingle } from './figures/issuance-single.js'
import type { IssuanceTimes } from './figures/issuance.js'
import { measureLocks } from './figures/locks.js'
import { measureReload, type ReloadRun } from './figures/reload.js'
import { seedCertificates } from './figures/seed.js'
import { handshakeResults, memoryResults, startupResults } from './figures/serving-results.js'
import { measureServing } from './figures/serving-sessions.js'
import { startAcmeLab, type AcmeLab } from './lib/acme-env.js'
import { loadavg } from './lib/machine.js'
import { APPS, stopAll, useAppsDir } from './lib/proc.js'
import { snapshotBuild } from './lib/snapshot.js'
import { issuanceChart } from './report/issuance-chart.js'
import { markdown } from './report/markdown.js'
import { reloadChart } from './report/reload-chart.js'
import type { BenchContext, BenchResult } from './report/result.js'

const SECTIONS = ['locks', 'issuance', 'hundred', 'serving', 'reload'] as const
const RESULTS = path.resolve(APPS, '../results')

// `pnpm bench -- --runs 3` passes the `--` through
const args = process.argv.slice(2).filter((arg, i) => i > 0 || arg !== '--')
const { values } = parseArgs({ args, options: { runs: { type: 'string', default: '5' }, only: { type: 'string' } } })
const runs = Number(values.runs)
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${JSON.stringify(values.runs)}`)
for (const section of values.only?.split(',') ?? []) {
  if (!(SECTIONS as readonly string[]).includes(section)) throw new Error(`--only: unknown section ${JSON.stringify(section)} (sections: ${SECTIONS.join(', ')})`)
}
const only = new Set(values.only ? values.only.split(',') : SECTIONS)
const started = performance.now()
const log = (line: string) => process.stdout.write(`${line}\n`)
const workDir = mkdtempSync(path.join(tmpdir(), 'fastify-acme-bench-'))
const ctx: BenchContext = { workDir, runs, log }
const results: BenchResult[] = []
const sectionLoad: Record<string, number> = {}
const sectionMs: Record<string, number> = {}
const startLoad = loadavg()
let lab: AcmeLab | undefined
const issuance: { single?: IssuanceTimes, hundred?: IssuanceTimes } = {}
let reloadRuns: ReloadRun[] = []

async function section (name: typeof SECTIONS[number], work: () => Promise<void>): Promise<void> {
  if (!only.has(name)) return
  sectionLoad[name] = loadavg()[0]!
  log(`${name} (load ${sectionLoad[name]})`)
  const begin = performance.now()
  await work()
  sectionMs[name] = Math.round(performance.now() - begin)
}

async function main (): Promise<void> {
  log(`fastify-acme bench: ${ctx.runs} runs per figure, load average ${startLoad.join(' / ')}, scratch ${workDir}`)
  useAppsDir(snapshotBuild(path.join(workDir, 'build')))
  await section('locks', async () => { results.push(...await measureLocks(ctx)) })
  if (only.has('issuance') || only.has('hundred')) lab = await startAcmeLab(workDir)
  await section('issuance', async () => {
    const single = await issuanceSingle(ctx, lab!)
    issuance.single = single.times
    results.unshift(single.result)
  })
  await section('hundred', async () => {
    const hundred = await issuanceHundred(ctx, lab!)
    issuance.hundred = hundred.times
    results.splice(issuance.single ? 1 : 0, 0, hundred.result)
  })
  await lab?.stop()
  lab = undefined
  await section('serving', async () => {
    const seed = await seedCertificates(ctx)
    const samples = await measureServing(ctx, seed)
    results.push(...handshakeResults(samples), ...memoryResults(samples), ...startupResults(samples))
  })
  await section('reload', async () => {
    const reload = await measureReload(ctx)
    reloadRuns = reload.runs
    results.push(...reload.results)
  })
  write()
}

function write (): void {
  const wallMs = performance.now() - started
  const order = ['issuance.', 'handshake.', 'reload.', 'memory.', 'startup.', 'lock.']
  results.sort((a, b) => order.findIndex((p) => a.name.startsWith(p)) - order.findIndex((p) => b.name.startsWith(p)))
  const report = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim(),
      node: process.version,
      platform: `${os.type()} ${os.release()}`,
      loadavg: { start: startLoad, end: loadavg(), sections: sectionLoad },
      sectionsMs: sectionMs,
    },
    wallMs: Math.round(wallMs),
    command: 'pnpm bench',
    results,
  }
  writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  writeFileSync(path.join(RESULTS, 'latest.md'), markdown(report))
  const panels = [
    ...(issuance.single ? [{ title: 'issuance.single: 1 name, spawn to first HTTPS response (lego, auto(): to certificate)', times: issuance.single }] : []),
    ...(issuance.hundred ? [{ title: 'issuance.hundred: 100 names, spawn to all served', times: issuance.hundred }] : []),
  ]
  if (panels.length > 0) writeFileSync(path.join(RESULTS, 'issuance.svg'), issuanceChart(panels))
  if (reloadRuns.length > 0) {
    const byRatio = [...reloadRuns].sort((a, b) => a.ratio - b.ratio)
    const median = byRatio[Math.floor((byRatio.length - 1) / 2)]!
    writeFileSync(path.join(RESULTS, 'reload.svg'), reloadChart(median))
  }
  log(`\nwrote ${path.relative(process.cwd(), RESULTS)}/latest.{json,md} in ${Math.round(wallMs / 1000)} s (load average ${loadavg().join(' / ')})`)
  for (const r of results) log(`  ${r.name}: ${r.ours} ${r.unit} (${r.met === null ? 'extra' : r.met ? 'met' : 'MISSED'}: ${r.target})`)
}

async function cleanup (): Promise<void> {
  await stopAll()
  await lab?.stop().catch(() => {})
  rmSync(workDir, { recursive: true, force: true })
}

process.once('SIGINT', () => { cleanup().finally(() => process.exit(130)) })
main().then(cleanup, async (err) => {
  log(`bench failed: ${(err as Error).stack ?? err}`)
  await cleanup()
  process.exitCode = 1
})
