/** A figure over several runs: the median is what `ours` (or a peer) reports. */
export interface Summary {
  median: number
  min: number
  max: number
  runs: number
}

export function median (values: number[]): number {
  return quantile(values, 0.5)
}

/** Linear-interpolated quantile (q in [0, 1]) of unsorted values. */
export function quantile (values: number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}

/** A result's own figure: our median with min, max and the number of runs. */
export function figureOf (s: Summary): { ours: number, min: number, max: number, runs: number } {
  return { ours: s.median, min: s.min, max: s.max, runs: s.runs }
}

export function summarize (values: number[], digits = 1): Summary {
  const round = (n: number) => Math.round(n * 10 ** digits) / 10 ** digits
  return { median: round(median(values)), min: round(Math.min(...values)), max: round(Math.max(...values)), runs: values.length }
}
