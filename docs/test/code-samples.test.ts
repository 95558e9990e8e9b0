import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { beforeAll, describe, expect, it } from 'vitest'
import { DOCS_DIR, ROOT_DIR, fileNameOf, moduleOf, pages, samplesOf, type Sample } from './samples.js'

/*
 * Every ```ts block in docs/*.md and the README is compiled with the workspace's strict
 * tsconfig against the workspace packages, as its own module. A block that assumes imports or
 * variables says so in an HTML comment right before it:
 *
 *   <!-- prelude: import Fastify from 'fastify' -->      code put before the block
 *   <!-- fragment: import('fastify-acme').FastifyAcmeOptions -->
 *                                                        the block is the inside of an object of that type
 *   <!-- run -->                                         the block is also run with Node and must exit 0
 *   <!-- foreign: why -->                                another library's code, for comparison: it must
 *                                                        not use fastify-acme, and is not compiled
 *
 * There is no other way to skip a block, and blocks in other script languages (```js) fail the test.
 */

// inside docs/node_modules: imports resolve to the workspace packages, and no linter or git sees the files
const SAMPLES_DIR = path.join(DOCS_DIR, 'node_modules', '.samples')
const all = pages().map((file) => ({ file, ...samplesOf(file) }))
const samples = all.flatMap((p) => p.samples)
const named = samples.map((s) => [`${s.file}:${s.line}`, s] as const)

let program: ts.Program

beforeAll(() => {
  rmSync(SAMPLES_DIR, { recursive: true, force: true })
  mkdirSync(SAMPLES_DIR, { recursive: true })
  writeFileSync(path.join(SAMPLES_DIR, 'tsconfig.json'), JSON.stringify({
    extends: '../../../tsconfig.base.json',
    compilerOptions: { noEmit: true, declaration: false, declarationMap: false, sourceMap: false },
    include: ['*.ts'],
  }, null, 2))
  // a package scope of its own: under node_modules, Node would not look further up for "type"
  writeFileSync(path.join(SAMPLES_DIR, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
  for (const sample of samples) writeFileSync(path.join(SAMPLES_DIR, fileNameOf(sample)), moduleOf(sample).source)
  const configFile = path.join(SAMPLES_DIR, 'tsconfig.json')
  const parsed = ts.getParsedCommandLineOfConfigFile(configFile, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')) },
  })!
  program = ts.createProgram(samples.map((s) => path.join(SAMPLES_DIR, fileNameOf(s))), parsed.options)
})

/** The compiler's complaints about one sample, as `docs/page.md:line: message`. */
function diagnosticsOf (sample: Sample): string[] {
  const file = program.getSourceFile(path.join(SAMPLES_DIR, fileNameOf(sample)))
  if (!file) return [`${sample.file}:${sample.line}: the sample was not compiled`]
  const { offset } = moduleOf(sample)
  const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
  return diagnostics.map((d) => {
    const line = d.start === undefined ? 0 : file.getLineAndCharacterOfPosition(d.start).line
    const where = line < offset ? `${sample.file}:${sample.line} (prelude or fragment wrapper)` : `${sample.file}:${sample.line + line - offset}`
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

describe('code samples in the docs', () => {
  it('finds the samples of every page', () => {
    expect(samples.length).toBeGreaterThan(30)
    for (const page of ['docs/configuration.md', 'docs/storage.md', 'docs/clusters.md', 'docs/on-demand.md', 'docs/api.md']) {
      expect(samples.filter((s) => s.file === page).length, page).toBeGreaterThan(0)
    }
  })

  it('has no blocks in a language that would not be checked (write them as ```ts)', () => {
    expect(all.flatMap((p) => p.rejected).map((r) => `${r.file}:${r.line} (${r.lang})`)).toEqual([])
  })

  it('shows other libraries\' code only as marked foreign blocks that do not use fastify-acme', () => {
    const foreign = all.flatMap((p) => p.foreign)
    for (const block of foreign) {
      expect(block.reason.length, `${block.file}:${block.line} says why`).toBeGreaterThan(10)
      expect(block.code, `${block.file}:${block.line}`).not.toMatch(/fastify-acme|@fastify-acme/)
    }
    expect(foreign.every((b) => b.file === 'docs/migrating-from-greenlock.md')).toBe(true)
  })

  it.each(named)('%s compiles', (_, sample) => {
    expect(diagnosticsOf(sample)).toEqual([])
  })

  const runnable = named.filter(([, s]) => s.run)
  it.each(runnable)('%s runs', async (_, sample) => {
    const file = path.join(SAMPLES_DIR, fileNameOf(sample))
    const { code, output } = await new Promise<{ code: number | null, output: string }>((resolve) => {
      execFile(process.execPath, ['--conditions=source', '--import', 'tsx', file], { cwd: SAMPLES_DIR, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output: `${stdout}${stderr}` })
      })
    })
    expect(output && code !== 0 ? output : '', `${sample.file}:${sample.line}`).toBe('')
    expect(code).toBe(0)
  })
})

describe('the docs pages', () => {
  it('are all there, and the index links each one', () => {
    const required = ['README', 'getting-started', 'configuration', 'storage', 'clusters', 'dns-01', 'on-demand', 'production',
      'operations', 'troubleshooting', 'migrating-from-greenlock', 'api']
    const index = readFileSync(path.join(DOCS_DIR, 'README.md'), 'utf8')
    for (const page of required) {
      expect(existsSync(path.join(DOCS_DIR, `${page}.md`)), page).toBe(true)
      if (page !== 'README') expect(index, `docs/README.md links ${page}.md`).toContain(`(${page}.md)`)
    }
  })

  it('link only to files that exist', () => {
    const broken: string[] = []
    for (const file of pages()) {
      const text = readFileSync(path.join(ROOT_DIR, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue
        const resolved = path.resolve(ROOT_DIR, path.dirname(file), target!.split('#')[0]!)
        if (!existsSync(resolved)) broken.push(`${file}: ${target}`)
      }
    }
    expect(broken).toEqual([])
  })
})
