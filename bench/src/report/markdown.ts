import type { BenchResult } from './result.js'

const PEERS = [['caddy', 'Caddy'], ['lego', 'lego'], ['acme-client-auto', 'acme-client auto()'], ['plain-https', 'plain https']] as const

export interface Report {
  date: string
  machine: Record<string, unknown>
  results: BenchResult[]
  wallMs: number
}

/** bench/results/latest.md: one row per figure, ours and every peer, the target and whether it is met. */
export function markdown (report: Report): string {
  const head = ['figure', 'ours (median, min-max)', ...PEERS.map(([, label]) => label), 'target', 'met']
  const rows = report.results.map((r) => [
    `\`${r.name}\`${r.rotations ? ` (${r.rotations} rotations)` : ''}`,
    `**${fmt(r.ours, r.unit)}** (${fmt(r.min, r.unit)}-${fmt(r.max, r.unit)}, ${r.runs} runs)` +
      ((r.failedRuns as Record<string, string[]> | undefined)?.ours ? `, **${(r.failedRuns as Record<string, string[]>).ours!.length} failed**` : ''),
    ...PEERS.map(([key]) => {
      const value = r.peers?.[key]
      if (value === undefined) return ''
      const range = r.peerRanges?.[key]
      const unit = r.unit === 'ratio' ? 'handshakes/s' : r.unit
      const failed = (r.failedRuns as Record<string, string[]> | undefined)?.[key]?.length
      const text = range ? `${fmt(value, unit)} (${fmt(range.min, unit)}-${fmt(range.max, unit)})` : fmt(value, unit)
      return failed ? `${text}, **${failed} failed run${failed > 1 ? 's' : ''}**` : text
    }),
    r.target,
    r.met === null ? 'n/a (extra)' : r.met ? 'yes' : '**no**',
  ])
  const load = report.machine.loadavg as { start: number[], end: number[] }
  return [
    '# Benchmarks: latest run',
    '',
    `${report.date} on ${report.machine.cpus} CPUs (${report.machine.cpuModel}), Node ${report.machine.node}; ` +
      `load average ${load.start.join(' / ')} at start, ${load.end.join(' / ')} at end; \`pnpm bench\` took ${Math.round(report.wallMs / 1000)} s. ` +
      'Regenerated whole by `pnpm bench`; see bench/README.md for what each figure means and how each peer runs.',
    '',
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    'Notes:',
    '',
    ...report.results.filter((r) => r.note).map((r) => `- \`${r.name}\`: ${r.note}`),
    '',
    '![time to certificate](issuance.svg)',
    '',
    '![handshake latency across rotations](reload.svg)',
    '',
  ].join('\n')
}

function fmt (value: number, unit: string): string {
  if (unit === 'ms') return value >= 1000 ? `${(value / 1000).toFixed(value >= 10_000 ? 1 : 2)} s` : `${Math.round(value * 100) / 100} ms`
  if (unit === 'handshakes') return String(value)
  if (unit === 'ratio') return `${value.toFixed(3)}x`
  if (unit === 'KB') return `${value.toFixed(2)} KB`
  if (unit === 'handshakes/s') return `${Math.round(value)}/s`
  return `${value} ${unit}`
}
