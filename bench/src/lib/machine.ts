import os from 'node:os'

/** 1, 5 and 15-minute load averages, rounded: written with every result file. */
export function loadavg (): number[] {
  return os.loadavg().map((n) => Math.round(n * 100) / 100)
}
