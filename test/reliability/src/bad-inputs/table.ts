import type { AcmeProxy } from '@fastify-acme/harness'
import type { ScenarioEnv } from '../lib/env.js'

/** What a bad input must lead to. */
export type Expectation =
  | { code: string }
  /** an HTTP status (challenge requests) */
  | { status: number }
  /** accepted after normalisation (upper case, unicode): the value the manager keeps */
  | { normalised: string[] }

/** What actually happened. */
export interface Outcome {
  code?: string
  status?: number
  normalised?: string[]
  /** an error without an ERR_ACME_ code: its name and message */
  uncoded?: string
  /** for stored bytes: what "no data loss" means in this case, and whether it held */
  dataKept?: { rule: string, held: boolean }
  /** the error message, checked for secrets by the caller */
  message?: string
}

export interface BadInputCase {
  group: 'options' | 'environment' | 'challenge' | 'stored' | 'ca'
  name: string
  expect: Expectation
  run: (ctx: CaseContext) => Promise<Outcome>
}

export interface CaseContext {
  env: ScenarioEnv
  /** a fresh proxy in front of the shared Pebble, faults cleared before each case */
  proxy: AcmeProxy
  logFile: string
}

export interface CaseResult {
  group: string
  name: string
  expected: Expectation
  outcome: Outcome
  /** the outcome is what was expected (and no data was lost) */
  pass: boolean
  crashed: boolean
  uncoded: boolean
}

/** Runs `fn` and reports its error as an Outcome: coded, or uncoded. */
export async function outcomeOf (fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    await fn()
    return {}
  } catch (err) {
    const e = err as { code?: unknown, name?: string, message?: string }
    if (typeof e?.code === 'string' && e.code.startsWith('ERR_ACME_')) return { code: e.code, message: e.message ?? '' }
    return { uncoded: `${e?.name ?? typeof err}${typeof e?.code === 'string' ? ` (${e.code})` : ''}: ${e?.message ?? String(err)}`.slice(0, 300), message: e?.message ?? '' }
  }
}

/** Error messages reach logs: they must never carry key material. */
export function leaksSecret (outcome: Outcome): boolean {
  return /PRIVATE KEY|MIG[A-Za-z0-9+/]{20,}/.test(outcome.message ?? '')
}

export function matches (expected: Expectation, outcome: Outcome): boolean {
  if (leaksSecret(outcome)) return false
  if ('code' in expected) return outcome.code === expected.code
  if ('status' in expected) return outcome.status === expected.status
  return JSON.stringify(outcome.normalised) === JSON.stringify(expected.normalised)
}
