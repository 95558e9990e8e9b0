import type { CliContext } from './context.js'

/** Writes the one JSON document of a --json run. */
export function printJson (ctx: CliContext, doc: Record<string, unknown>): void {
  ctx.out(`${JSON.stringify(doc, null, 2)}\n`)
}

/** A plain-text table: a header row, then rows, columns padded to their widest cell. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join('  ').trimEnd()
  return `${[line(header), ...rows.map(line)].join('\n')}\n`
}

/** `2031-11-29 01:44` (UTC) */
export function shortTime (date: Date | undefined | null): string {
  return date ? date.toISOString().slice(0, 16).replace('T', ' ') : '-'
}

/** Days from now, one decimal: `59.3`, `-2.0` once past. */
export function daysLeft (date: Date, now = new Date()): number {
  return Math.round((date.getTime() - now.getTime()) / 8_640_000) / 10
}

export function truncate (text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ')
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}
