import { services } from '@fastify-acme/harness/vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { ScenarioEnv } from './env.js'

let logDir: string | undefined

/** The shared services of the vitest run, with a log dir per test file. */
export function testEnv (): ScenarioEnv {
  logDir ??= mkdtempSync(path.join(tmpdir(), 'reliability-logs-'))
  return { ...services(), logDir }
}
