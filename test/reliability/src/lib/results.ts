import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** One figure of bench/results/reliability.json (SPEC sections 6 and 7). */
export interface ReliabilityResult {
  /** fixed name, e.g. cluster.redis.orders */
  name: string
  unit: string
  /** what this run measured; null when the scenario could not produce it */
  ours: number | null
  target: number
  /** how `ours` compares with `target` when met */
  comparison: '==' | '<=' | '>='
  met: boolean
  note?: string
  [detail: string]: unknown
}

export const RESULTS_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../bench/results/reliability.json')

export function figure (name: string, unit: string, ours: number | null, target: number, comparison: ReliabilityResult['comparison'], details: Record<string, unknown> = {}): ReliabilityResult {
  const met = ours !== null && (comparison === '==' ? ours === target : comparison === '<=' ? ours <= target : ours >= target)
  return { name, unit, ours, target, comparison, met, ...details }
}

/**
 * Writes the results file. A partial run (`merge`) keeps the figures it did not measure from
 * the file already there; a full run regenerates it whole.
 */
export function writeResults (results: ReliabilityResult[], extra: Record<string, unknown>, merge = false): void {
  if (merge && existsSync(RESULTS_FILE)) {
    const previous = (JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as { results: ReliabilityResult[] }).results
    const measured = new Set(results.map((r) => r.name))
    results = [...previous.filter((r) => !measured.has(r.name)), ...results]
  }
  const file = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim(), node: process.version, platform: `${os.type()} ${os.release()}`, loadavg: os.loadavg().map((n) => Math.round(n * 100) / 100) },
    command: 'pnpm test:reliability',
    ...extra,
    results,
  }
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true })
  writeFileSync(RESULTS_FILE, `${JSON.stringify(file, null, 2)}\n`)
}

/** A plain-text table for the console. */
export function table (results: ReliabilityResult[]): string {
  const rows = results.map((r) => [r.name, `${r.ours ?? 'n/a'} ${r.unit}`, `${r.comparison} ${r.target}`, r.met ? 'met' : 'NOT MET'])
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).join('\n')
}
