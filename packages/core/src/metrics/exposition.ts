/** The Content-Type of the Prometheus text exposition format this module writes. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** One sample of a metric family: an optional name suffix (`_bucket`, `_sum`, `_count`), labels and a value. */
export interface MetricSample {
  suffix?: '_bucket' | '_sum' | '_count'
  labels?: Record<string, string>
  value: number
}

/** A metric family as Prometheus sees it: one HELP, one TYPE, its samples. */
export interface MetricFamily {
  /** metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*` (counters end in `_total`) */
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  samples: MetricSample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A label value as the text format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A HELP text as the text format wants it: backslash and line feed escaped. */
export function escapeHelp (help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** A sample value in Go's float syntax: `+Inf`, `-Inf`, `NaN`, or the shortest decimal. */
export function formatSampleValue (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/**
 * Renders metric families in the Prometheus text exposition format 0.0.4: `# HELP` and
 * `# TYPE` lines, then the samples, each family once, ending with a line feed.
 * Throws on a name Prometheus would refuse, so a mistake fails loudly in tests.
 */
export function renderExposition (families: MetricFamily[]): string {
  const seen = new Set<string>()
  let out = ''
  for (const family of families) {
    if (!METRIC_NAME.test(family.name) || seen.has(family.name)) throw new Error(`bad or duplicate metric name ${JSON.stringify(family.name)}`)
    seen.add(family.name)
    out += `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`
    for (const sample of family.samples) {
      out += `${family.name}${sample.suffix ?? ''}${renderLabels(sample.labels)} ${formatSampleValue(sample.value)}\n`
    }
  }
  return out
}

function renderLabels (labels: Record<string, string> | undefined): string {
  if (!labels) return ''
  const pairs = Object.entries(labels)
  if (pairs.length === 0) return ''
  return `{${pairs.map(([name, value]) => {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`bad label name ${JSON.stringify(name)}`)
    return `${name}="${escapeLabelValue(value)}"`
  }).join(',')}}`
}

/** A cumulative histogram with fixed upper bounds, in the unit of the values observed. */
export class CumulativeHistogram {
  readonly bounds: readonly number[]
  readonly #counts: number[]
  #sum = 0
  #count = 0

  /** `bounds`: increasing upper bounds; +Inf is implied */
  constructor (bounds: readonly number[]) {
    if (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!))) {
      throw new Error('histogram bounds must be finite and strictly increasing')
    }
    this.bounds = [...bounds]
    this.#counts = bounds.map(() => 0)
  }

  observe (value: number): void {
    if (!Number.isFinite(value)) return
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) this.#counts[i]!++
    this.#sum += value
    this.#count++
  }

  /** Cumulative bucket counts (one per bound, then +Inf), sum and count. */
  snapshot (): { buckets: Array<{ le: number, count: number }>, sum: number, count: number } {
    return {
      buckets: [...this.bounds.map((le, i) => ({ le, count: this.#counts[i]! })), { le: Infinity, count: this.#count }],
      sum: this.#sum,
      count: this.#count,
    }
  }

  /** The `_bucket`, `_sum` and `_count` samples of this histogram. */
  samples (): MetricSample[] {
    const { buckets, sum, count } = this.snapshot()
    return [
      ...buckets.map(({ le, count }) => ({ suffix: '_bucket' as const, labels: { le: formatSampleValue(le) }, value: count })),
      { suffix: '_sum', value: sum },
      { suffix: '_count', value: count },
    ]
  }
}
