import { execFile } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'

const PACKAGE = fileURLToPath(new URL('../../', import.meta.url))
const MAIN = path.join(PACKAGE, 'src/cli/main.ts')

export interface CliRun { code: number, stdout: string, stderr: string }

/** Runs the CLI from source in a fresh process (`node --conditions=source --import tsx`), with only the given ACME_* variables. */
export function cli (args: string[], opts: { env?: Record<string, string>, cwd?: string } = {}): Promise<CliRun> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACME_')))
  return new Promise((resolve) => {
    execFile(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, ...args], { cwd: opts.cwd ?? PACKAGE, env: { ...env, ...opts.env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
    })
  })
}

/** The one JSON document a --json run printed. */
export function json (run: CliRun): Record<string, any> {
  expect(run.stdout.trim().startsWith('{'), run.stderr).toBe(true)
  return JSON.parse(run.stdout)
}
