import { ErrorCodes } from '@fastify-acme/core'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DOCS_DIR } from './samples.js'

/*
 * The reference pages must match the code: every error code has its entry in
 * troubleshooting.md, every option (read from the TypeScript types, so a new option without
 * docs fails here) is in configuration.md, storage.md or dns-01.md, and every export, event and
 * manager method is in api.md.
 */

const page = (name: string) => readFileSync(path.join(DOCS_DIR, name), 'utf8')

/** Whether `text` shows `name` in a code span: `name`, `renewal.name`, `name(options)`, ... */
function mentions (text: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`\`[^\`\\n]*(?<![\\w$])${escaped}(?![\\w$])[^\`\\n]*\``).test(text)
}

const ENTRY_POINTS = [
  'fastify-acme',
  '@fastify-acme/core',
  '@fastify-acme/core/dns/rfc2136',
  '@fastify-acme/core/dns/cloudflare',
  '@fastify-acme/core/dns/route53',
  '@fastify-acme/storage-adapters',
  '@fastify-acme/storage-adapters/fs',
  '@fastify-acme/storage-adapters/redis',
  '@fastify-acme/storage-adapters/s3',
  '@fastify-acme/storage-adapters/testing',
]

/** Option types, as type expressions over the imports below, and the page that documents them. */
const OPTION_TYPES: Record<string, string[]> = {
  'configuration.md': [
    'FastifyAcmeOptions',
    'CertificateManagerOptions',
    'NonNullable<FastifyAcmeOptions["challenges"]>',
    'Exclude<NonNullable<NonNullable<FastifyAcmeOptions["challenges"]>["http01"]>, boolean>',
    'ChallengeOptions',
    'NonNullable<CertificateManagerOptions["renewal"]>',
    'OnDemandOptions',
    'NonNullable<CertificateManagerOptions["tls"]>',
    'NonNullable<CertificateManagerOptions["localCa"]>',
    'EabCredentials',
    'OrderRateLimit',
    'MetricsRouteOptions',
    'StatusPageOptions',
    'AcmeHttpsOptions',
    'AcmeEnv',
  ],
  'dns-01.md': ['Dns01Options', 'Rfc2136Options', 'NonNullable<Rfc2136Options["tsig"]>', 'CloudflareOptions', 'Route53Options', 'Dns01Provider'],
  'storage.md': ['FsStorageOptions', 'RedisStorageOptions', 'S3StorageOptions', 'EncryptedStorageOptions', 'EncryptionKey', 'StorageFromUrlOptions', 'StorageContractOptions'],
}

const PROBE = `import type { AcmeEnv, AcmeHttpsOptions, FastifyAcmeOptions, MetricsRouteOptions, StatusPageOptions } from 'fastify-acme'
import type { CertificateManager, CertificateManagerOptions, ChallengeOptions, Dns01Options, Dns01Provider, EabCredentials, EncryptedStorageOptions, EncryptionKey, ManagerEvents, OnDemandOptions, OrderRateLimit } from '@fastify-acme/core'
import type { Rfc2136Options } from '@fastify-acme/core/dns/rfc2136'
import type { CloudflareOptions } from '@fastify-acme/core/dns/cloudflare'
import type { Route53Options } from '@fastify-acme/core/dns/route53'
import type { StorageFromUrlOptions } from '@fastify-acme/storage-adapters'
import type { FsStorageOptions } from '@fastify-acme/storage-adapters/fs'
import type { RedisStorageOptions } from '@fastify-acme/storage-adapters/redis'
import type { S3StorageOptions } from '@fastify-acme/storage-adapters/s3'
import type { StorageContractOptions } from '@fastify-acme/storage-adapters/testing'
${ENTRY_POINTS.map((spec, i) => `import * as entry${i} from '${spec}'`).join('\n')}
export type Manager = CertificateManager
export type Events = ManagerEvents
${Object.values(OPTION_TYPES).flat().map((expr, i) => `export type Option${i} = ${expr}`).join('\n')}
export { ${ENTRY_POINTS.map((_, i) => `entry${i}`).join(', ')} }
`

const PROBE_DIR = path.join(DOCS_DIR, 'node_modules', '.reference')
let checker: ts.TypeChecker
let probe: ts.SourceFile

beforeAll(() => {
  mkdirSync(PROBE_DIR, { recursive: true })
  const file = path.join(PROBE_DIR, 'probe.ts')
  writeFileSync(file, PROBE)
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    customConditions: ['source'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  })
  const errors = ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  expect(errors).toEqual([])
  checker = program.getTypeChecker()
  probe = program.getSourceFile(file)!
})
afterAll(() => rmSync(PROBE_DIR, { recursive: true, force: true }))

function aliasType (name: string): ts.Type {
  const decl = probe.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s) && s.name.text === name)!
  return checker.getTypeAtLocation(decl.name)
}

function propertyNames (type: ts.Type): string[] {
  return checker.getPropertiesOfType(type).map((p) => p.name).filter((n) => !n.startsWith('#') && !n.startsWith('__'))
}

describe('the reference pages match the code', () => {
  it('troubleshooting.md has an entry (a heading) for every error code, and none for codes that do not exist', () => {
    const text = page('troubleshooting.md')
    const headings = [...text.matchAll(/^#{2,4} `(ERR_ACME_[A-Z_]+)`$/gm)].map((m) => m[1])
    expect(headings.sort()).toEqual(Object.values(ErrorCodes).sort())
    // every entry says what causes it and how to fix it
    for (const code of Object.values(ErrorCodes)) {
      const entry = text.split(new RegExp(`^#{2,4} \`${code}\`$`, 'm'))[1]!.split(/^#{2,4} /m)[0]!
      expect(entry, code).toMatch(/\*\*Cause\.\*\*/)
      expect(entry, code).toMatch(/\*\*Fix\.\*\*/)
    }
  })

  it('configuration.md, dns-01.md and storage.md document every option of every options type', () => {
    const missing: string[] = []
    let n = 0
    for (const [file, types] of Object.entries(OPTION_TYPES)) {
      const text = page(file)
      for (const expr of types) {
        const names = propertyNames(aliasType(`Option${n++}`))
        expect(names.length, expr).toBeGreaterThan(0)
        for (const name of names) if (!mentions(text, name)) missing.push(`${file}: ${expr}.${name}`)
      }
    }
    expect(missing).toEqual([])
  })

  it('configuration.md lists every ACME_* variable in its table', () => {
    const text = page('configuration.md')
    const vars = propertyNames(aliasType(`Option${OPTION_TYPES['configuration.md']!.indexOf('AcmeEnv')}`))
    expect(vars.length).toBeGreaterThanOrEqual(11)
    for (const name of vars) expect(text, name).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'))
  })

  it('api.md names every export of every entry point', () => {
    const text = page('api.md')
    const missing: string[] = []
    for (const statement of probe.statements) {
      if (!ts.isImportDeclaration(statement) || statement.importClause?.isTypeOnly) continue
      const spec = (statement.moduleSpecifier as ts.StringLiteral).text
      expect(text, spec).toContain(`\`${spec}\``)
      const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(statement.moduleSpecifier)!).map((s) => s.name)
      expect(exports.length, spec).toBeGreaterThan(0)
      for (const name of exports) if (!mentions(text, name)) missing.push(`${spec}: ${name}`)
    }
    expect(missing).toEqual([])
  })

  it('api.md describes every manager event and every public method of CertificateManager', () => {
    const text = page('api.md')
    const events = propertyNames(aliasType('Events'))
    expect(events.length).toBeGreaterThanOrEqual(7)
    for (const event of events) expect(text, event).toMatch(new RegExp(`^\\| \`${event}\` \\|`, 'm'))
    const members = propertyNames(aliasType('Manager'))
    expect(members.length).toBeGreaterThan(15)
    for (const member of members) expect(mentions(text, member), member).toBe(true)
  })
})
