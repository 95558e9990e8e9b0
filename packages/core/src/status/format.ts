/** Text made safe for HTML content and attribute values. */
export function escapeHtml (value: unknown): string {
  return String(value).replace(/[&<>"']/g, (ch) => ENTITIES[ch]!)
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** `2025-03-01 14:05 UTC` */
export function formatUtc (date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** A `<time>` element with the ISO instant and its UTC rendering. */
export function timeElement (date: Date): string {
  return `<time datetime="${date.toISOString()}">${formatUtc(date)}</time>`
}

/** `in 3 d 4 h`, `5 min ago`, `now`: the largest two units of `date - now`. */
export function relativeTime (date: Date, now: Date): string {
  const ms = date.getTime() - now.getTime()
  const abs = Math.abs(ms)
  if (abs < 30_000) return 'now'
  const text = duration(abs)
  return ms > 0 ? `in ${text}` : `${text} ago`
}

/** `3 d 4 h`, `12 min`, `45 s`, `250 ms` */
export function duration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]]
  const parts: string[] = []
  let rest = ms
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size)
    if (n > 0 || parts.length > 0) parts.push(`${n} ${unit}`)
    rest -= n * size
    if (parts.length === 2) break
  }
  return parts.filter((p) => !p.startsWith('0 ')).join(' ') || `${Math.round(ms / 1000)} s`
}
