import type { IssuanceTimes } from '../figures/issuance.js'
import { median } from '../lib/stats.js'
import { document, line, rect, text, ticks } from './svg.js'

const COLORS: Record<string, string> = { ours: '#2563eb', caddy: '#16a34a', 'acme-client-auto': '#d97706', lego: '#9333ea' }
const LABELS: Record<string, string> = { ours: 'fastify-acme', caddy: 'Caddy 2.6', 'acme-client-auto': 'acme-client auto()', lego: 'lego 4.9' }

/** Horizontal bars (median, min-max whisker) per system, one panel per issuance figure. */
export function issuanceChart (panels: Array<{ title: string, times: IssuanceTimes }>): string {
  const width = 640
  const rowH = 26
  const left = 140
  const right = 60
  const body: string[] = []
  let y = 28
  body.push(text(12, 18, 'Time to certificate, Pebble no-sleep, same run (median bar, min-max whisker)', 'font-weight="600"'))
  for (const panel of panels) {
    const entries = Object.entries(panel.times).filter(([, v]) => v.length > 0)
    const max = Math.max(...entries.flatMap(([, v]) => v))
    const axis = ticks(max / 1000, 5)
    const scale = (width - left - right) / axis.at(-1)!
    y += 18
    body.push(text(12, y, panel.title, 'font-weight="600"'))
    y += 8
    const top = y
    for (const [key, values] of entries) {
      const m = median(values) / 1000
      const [lo, hi] = [Math.min(...values) / 1000, Math.max(...values) / 1000]
      const cy = y + rowH / 2
      body.push(text(left - 8, cy + 4, LABELS[key] ?? key, 'text-anchor="end"'))
      body.push(rect(left, y + 5, m * scale, rowH - 10, `fill="${COLORS[key] ?? '#64748b'}"`))
      body.push(line(left + lo * scale, cy, left + hi * scale, cy, 'stroke="#111" stroke-width="1"'))
      body.push(line(left + lo * scale, cy - 4, left + lo * scale, cy + 4, 'stroke="#111"'))
      body.push(line(left + hi * scale, cy - 4, left + hi * scale, cy + 4, 'stroke="#111"'))
      body.push(text(left + Math.max(m, hi) * scale + 6, cy + 4, seconds(m), 'fill="#111"'))
      y += rowH
    }
    for (const t of axis) {
      body.push(line(left + t * scale, top, left + t * scale, y, 'stroke="#e5e7eb"'))
      body.push(text(left + t * scale, y + 14, `${t} s`, 'text-anchor="middle" fill="#555" font-size="10"'))
    }
    y += 22
  }
  return document(width, y + 8, body)
}

function seconds (s: number): string {
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`
}
