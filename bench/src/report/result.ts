/** One figure of bench/results/latest.json (SPEC section 6). */
export interface BenchResult {
  /** fixed name, e.g. issuance.single */
  name: string
  unit: string
  /** the median over `runs` */
  ours: number
  min: number
  max: number
  runs: number
  /** each peer's median, measured in the same run */
  peers?: Record<string, number>
  peerRanges?: Record<string, { min: number, max: number, runs: number }>
  /** the SPEC target, in words */
  target: string
  /** whether `ours` meets it; null when the figure has no target (an extra) */
  met: boolean | null
  note?: string
  [extra: string]: unknown
}

/** What every figure module gets. */
export interface BenchContext {
  /** a scratch directory for this bench run, removed at the end */
  workDir: string
  runs: number
  log (line: string): void
}
