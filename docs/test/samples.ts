import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** docs/ */
export const DOCS_DIR = fileURLToPath(new URL('..', import.meta.url))
/** the repository root */
export const ROOT_DIR = path.resolve(DOCS_DIR, '..')

/** One fenced ```ts block of a Markdown page, with what the comments before it ask for. */
export interface Sample {
  /** path relative to the repository root, e.g. docs/storage.md */
  file: string
  /** 1-based line of the first line of code in the page */
  line: number
  code: string
  /** `<!-- prelude ... -->`: code put before the block (imports, declarations it assumes) */
  prelude: string
  /** `<!-- fragment: Type -->`: the block is the inside of an object literal of this type */
  fragment?: string
  /** `<!-- run -->`: the block is also run with Node, and must exit 0 */
  run: boolean
}

/** A fenced block in a language the checker does not accept (samples are TypeScript). */
export interface Rejected { file: string, line: number, lang: string }

/**
 * A block of another library's code, for comparison (the greenlock side of the migration
 * guide), marked `<!-- foreign: why -->`. It may be in any language but must not use fastify-acme.
 */
export interface Foreign { file: string, line: number, reason: string, code: string }

const FENCE = /^```([\w-]*)[^\n]*\n([\s\S]*?)^```[ \t]*$/gm
const COMMENTS_BEFORE = /(?:<!--[\s\S]*?-->\s*)+$/
const CHECKED = new Set(['ts', 'typescript'])
/** code in these languages would go unchecked: write it as ```ts */
const REJECTED = new Set(['js', 'javascript', 'mjs', 'cjs', 'tsx', 'jsx', 'mts'])

/** The Markdown pages whose samples are checked: docs/*.md, the root README and the READMEs published with each package. */
export function pages (): string[] {
  const docs = readdirSync(DOCS_DIR).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)
  const packages = readdirSync(path.join(ROOT_DIR, 'packages')).sort().map((p) => `packages/${p}/README.md`)
  return [...docs, 'README.md', ...packages]
}

/** Every ```ts block of `file` (relative to the repository root), and the blocks in rejected languages. */
export function samplesOf (file: string): { samples: Sample[], rejected: Rejected[], foreign: Foreign[] } {
  const text = readFileSync(path.join(ROOT_DIR, file), 'utf8')
  const samples: Sample[] = []
  const rejected: Rejected[] = []
  const foreign: Foreign[] = []
  let previousEnd = 0
  for (const match of text.matchAll(FENCE)) {
    const lang = match[1]!.toLowerCase()
    const start = match.index
    const line = text.slice(0, start).split('\n').length + 1
    const before = text.slice(previousEnd, start).trimEnd()
    previousEnd = start + match[0].length
    const comments = COMMENTS_BEFORE.exec(before)?.[0] ?? ''
    const foreignReason = /<!--\s*foreign:([\s\S]*?)-->/.exec(comments)?.[1]?.trim()
    if (foreignReason !== undefined) {
      foreign.push({ file, line, reason: foreignReason, code: match[2]! })
      continue
    }
    if (REJECTED.has(lang)) rejected.push({ file, line, lang })
    if (!CHECKED.has(lang)) continue
    const sample: Sample = { file, line, code: match[2]!, prelude: '', run: false }
    for (const [, body] of comments.matchAll(/<!--([\s\S]*?)-->/g)) {
      const directive = /^\s*(prelude|fragment|run)\b:?([\s\S]*)$/.exec(body!)
      if (!directive) continue
      const [, kind, rest] = directive
      if (kind === 'prelude') sample.prelude += `${rest!.trim()}\n`
      else if (kind === 'fragment') sample.fragment = rest!.trim()
      else sample.run = true
    }
    samples.push(sample)
  }
  return { samples, rejected, foreign }
}

/** The module a sample becomes, and how many lines come before its first line of code. */
export function moduleOf (sample: Sample): { source: string, offset: number } {
  const head = [`// ${sample.file}:${sample.line}`, ...lines(sample.prelude)]
  if (sample.fragment) head.push(`export const fragment: ${sample.fragment} = {`)
  const tail = sample.fragment ? ['}', ''] : ['export {}', '']
  return { source: [...head, ...lines(sample.code), ...tail].join('\n'), offset: head.length }
}

/** A file name for the sample: docs/storage.md:42 -> storage-42.ts */
export function fileNameOf (sample: Sample): string {
  const page = path.basename(sample.file, '.md').toLowerCase()
  const pkg = sample.file.startsWith('packages/') ? `${sample.file.split('/')[1]}-` : ''
  return `${pkg}${page}-${sample.line}.ts`
}

function lines (text: string): string[] {
  const out = text.replace(/\n$/, '').split('\n')
  return out.length === 1 && out[0] === '' ? [] : out
}
