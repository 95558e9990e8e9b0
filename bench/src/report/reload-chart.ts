import type { ReloadRun } from '../figures/reload.js'
import { quantile } from '../lib/stats.js'
import { document, line, polyline, rect, text, ticks } from './svg.js'

const BIN_MS = 100

/**
 * Handshake latency over time for one reload run: p50 and p99 per 100 ms bin, with the
 * rotating windows shaded and a tick at the end of every renewal.
 */
export function reloadChart (run: ReloadRun): string {
  const [width, height] = [720, 320]
  const [left, right, top, bottom] = [52, 16, 58, 44]
  const t0 = run.rotating[0]![0]
  const groups = new Map<number, number[]>()
  for (const [t, ms] of run.samples) {
    const key = Math.floor((t - t0) / BIN_MS)
    if (!groups.has(key)) groups.set(key, [])
    groups.get(key)!.push(ms)
  }
  const bins = [...groups.entries()].sort((a, b) => a[0] - b[0])
    .map(([key, v]) => ({ x: (key + 0.5) * BIN_MS / 1000, p50: quantile(v, 0.5), p99: quantile(v, 0.99) }))
  const xMax = Math.max(...bins.map((b) => b.x), ...run.rotating.map(([, b]) => (b - t0) / 1000))
  const yAxis = ticks(Math.max(...bins.map((b) => b.p99)) * 1.05, 5)
  const sx = (x: number) => left + x / xMax * (width - left - right)
  const sy = (y: number) => height - bottom - y / yAxis.at(-1)! * (height - top - bottom)
  const body: string[] = [
    text(12, 18, `Handshake latency, ${run.rotations.length} certificate rotations in 1 s windows (one every 100 ms), p50/p99 per ${BIN_MS} ms`, 'font-weight="600"'),
    text(12, 32, `p99 ${run.quiet.p99.toFixed(2)} ms in quiet windows, ${run.busy.p99.toFixed(2)} ms in rotating ones; ${run.failures} failed handshakes`, 'fill="#555" font-size="11"'),
    text(12, 48, 'p99', 'fill="#dc2626" font-weight="600"'),
    text(40, 48, 'p50', 'fill="#2563eb" font-weight="600"'),
    text(70, 48, 'shaded: rotating windows (renewals, then 500 ms to drain); ticks under the axis: each renewal done', 'fill="#b45309"'),
  ]
  for (const [a, b] of run.rotating) body.push(rect(sx((a - t0) / 1000), top, sx((b - t0) / 1000) - sx((a - t0) / 1000), height - top - bottom, 'fill="#fef3c7"'))
  for (const y of yAxis) {
    body.push(line(left, sy(y), width - right, sy(y), 'stroke="#e5e7eb"'))
    body.push(text(left - 6, sy(y) + 4, y === yAxis.at(-1) ? `${y} ms` : `${y}`, 'text-anchor="end" fill="#555" font-size="10"'))
  }
  for (const rot of run.rotations) {
    const x = sx((rot.endedAt - t0) / 1000)
    body.push(line(x, height - bottom, x, height - bottom + 5, 'stroke="#d97706"'))
  }
  body.push(polyline(bins.map((b) => [sx(b.x), sy(b.p99)]), 'stroke="#dc2626" stroke-width="1.5"'))
  body.push(polyline(bins.map((b) => [sx(b.x), sy(b.p50)]), 'stroke="#2563eb" stroke-width="1.5"'))
  for (const x of ticks(xMax, 10)) {
    if (x <= xMax) body.push(text(sx(x), height - bottom + 18, `${x} s`, 'text-anchor="middle" fill="#555" font-size="10"'))
  }
  body.push(line(left, height - bottom, width - right, height - bottom, 'stroke="#111"'))
  return document(width, height, body)
}
