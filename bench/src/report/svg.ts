/** Tiny hand-written SVG: just what two charts need. */

export function esc (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export function text (x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${r(x)}" y="${r(y)}" ${attrs}>${esc(content)}</text>`
}

export function line (x1: number, y1: number, x2: number, y2: number, attrs = ''): string {
  return `<line x1="${r(x1)}" y1="${r(y1)}" x2="${r(x2)}" y2="${r(y2)}" ${attrs}/>`
}

export function rect (x: number, y: number, w: number, h: number, attrs = ''): string {
  return `<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" ${attrs}/>`
}

export function polyline (points: Array<[number, number]>, attrs = ''): string {
  return `<polyline points="${points.map(([x, y]) => `${r(x)},${r(y)}`).join(' ')}" fill="none" ${attrs}/>`
}

export function document (width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}

/** Round ticks (1, 2, 5 x 10^n) covering [0, max]. */
export function ticks (max: number, count = 5): number[] {
  const raw = max / count
  const pow = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!
  const out: number[] = []
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6)
  if (out.at(-1)! < max) out.push(out.at(-1)! + step)
  return out
}

function r (n: number): string {
  return String(Math.round(n * 10) / 10)
}
