import path from 'node:path'
import { caCases } from '../bad-inputs/ca.js'
import { challengeCases } from '../bad-inputs/challenges.js'
import { environmentCases, optionCases } from '../bad-inputs/options.js'
import { storedCases } from '../bad-inputs/stored.js'
import { matches, type BadInputCase, type CaseResult, type Outcome } from '../bad-inputs/table.js'
import { logDirFor, proxyFor, type ScenarioEnv } from '../lib/env.js'

export const badInputCases: BadInputCase[] = [...optionCases, ...environmentCases, ...challengeCases, ...storedCases, ...caCases]

export interface BadInputsResult {
  cases: number
  crashes: number
  uncodedErrors: number
  /** outcomes that differ from the expectation (another code or status, or data lost) */
  mismatches: number
  results: CaseResult[]
}

/**
 * Runs every case in this process against real servers (apps on the plugin, Pebble behind the
 * proxy). A crash is an uncaught exception or unhandled rejection while a case runs, or a case
 * that throws out of its own harness.
 */
export async function runBadInputs (env: ScenarioEnv, filter: (c: BadInputCase) => boolean = () => true): Promise<BadInputsResult> {
  const logFile = path.join(logDirFor(env, 'bad-inputs'), `cases-${process.pid}.log`)
  const proxy = await proxyFor(env.pebble)
  const results: CaseResult[] = []
  let crashes = 0
  const onCrash = () => { crashes++ }
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  try {
    for (const c of badInputCases.filter(filter)) {
      const before = crashes
      proxy.clearFaults()
      let outcome: Outcome
      try {
        outcome = await c.run({ env, proxy, logFile })
      } catch (err) {
        outcome = { uncoded: `case harness failed: ${(err as Error).stack ?? String(err)}`.slice(0, 500) }
        crashes++
      }
      await new Promise((resolve) => setTimeout(resolve, 20)) // let late rejections surface
      const crashed = crashes > before
      const uncoded = outcome.uncoded !== undefined
      const pass = !crashed && !uncoded && matches(c.expect, outcome) && (outcome.dataKept?.held ?? true)
      results.push({ group: c.group, name: c.name, expected: c.expect, outcome, pass, crashed, uncoded })
    }
  } finally {
    process.off('uncaughtException', onCrash)
    process.off('unhandledRejection', onCrash)
    await proxy.close()
  }
  return {
    cases: results.length,
    crashes: results.filter((r) => r.crashed).length,
    uncodedErrors: results.filter((r) => r.uncoded).length,
    mismatches: results.filter((r) => !r.pass).length,
    results,
  }
}
