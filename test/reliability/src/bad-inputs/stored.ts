import { encryptedStorage, issuerKeyOf, StorageKeys, type Storage } from '@fastify-acme/core'
import { uniqueLoopbackAddress } from '@fastify-acme/harness'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pointName, tag } from '../lib/env.js'
import { outcomeOf, type BadInputCase, type CaseContext, type Outcome } from './table.js'
import { pluginApp } from './plugin-app.js'

interface Template { bundle: Record<string, unknown>, otherKey: string }
let template: Template | undefined

/** A real bundle from Pebble (and the key of a second one), mutated by each case. */
async function realBundle (ctx: CaseContext): Promise<Template> {
  if (template) return template
  const storage = fsStorage({ dir: mkdtempSync(path.join(tmpdir(), 'reliability-stored-')) })
  const names = [`tpl1-${tag('')}.example.test`, `tpl2-${tag('')}.example.test`]
  await withApp(ctx, storage, names, async (app) => {
    for (const name of names) await app.acme.obtain([name])
  })
  const read = async (name: string) => JSON.parse(Buffer.from((await storage.get(StorageKeys.certificateBundle(name)))!).toString('utf8')) as Record<string, unknown>
  template = { bundle: await read(names[0]!), otherKey: (await read(names[1]!)).privateKey as string }
  return template
}

async function withApp<T> (ctx: CaseContext, storage: Storage, names: string[], fn: (app: Awaited<ReturnType<typeof pluginApp>>) => Promise<T>): Promise<T> {
  const address = uniqueLoopbackAddress()
  for (const name of names) await pointName(ctx.env, name, address)
  const app = await pluginApp(ctx.logFile, {
    directoryUrl: ctx.proxy.directoryUrl,
    caBundle: ctx.env.pebble.caBundle,
    termsOfServiceAgreed: true,
    storage,
    challenges: { http01: { port: ctx.env.pebble.httpPort, host: address } },
  })
  try {
    return await fn(app)
  } finally {
    await app.close()
  }
}

/**
 * Writes `bytes` as the stored bundle of a fresh name, then asks the plugin for that name.
 * Rule for an unreadable bundle: it is never overwritten unless its bytes were first kept
 * beside it (certificates/<name>/unreadable-<ms>.json); a value that cannot even be read back
 * (ciphertext under another key) must stay where it is, and no order is placed.
 */
function storedCase (name: string, expectCode: string, write: (t: Template, name: string) => string | Buffer, opts: { writeKey?: Buffer, readKey?: Buffer, tamper?: boolean, key?: (name: string, ctx: CaseContext) => string } = {}): BadInputCase {
  return {
    group: 'stored',
    name,
    expect: { code: expectCode },
    run: async (ctx) => {
      const t = await realBundle(ctx)
      const dir = mkdtempSync(path.join(tmpdir(), 'reliability-stored-'))
      const raw = fsStorage({ dir })
      const primary = `st-${tag('')}.example.test`
      const key = opts.key?.(primary, ctx) ?? StorageKeys.certificateBundle(primary)
      const writer = opts.writeKey ? encryptedStorage(raw, { keys: [{ id: 'k1', key: opts.writeKey }] }) : raw
      const bytes = write(t, primary)
      await writer.put(key, bytes)
      if (opts.tamper) {
        const sealed = Buffer.from((await raw.get(key))!)
        const at = sealed.length - 10
        sealed.writeUInt8(sealed.readUInt8(at) ^ 0x01, at)
        await raw.put(key, sealed)
      }
      const reader = opts.readKey ? encryptedStorage(raw, { keys: [{ id: 'k1', key: opts.readKey }] }) : writer
      const before = await raw.get(key)
      let outcome: Outcome = {}
      await withApp(ctx, reader, [primary], async (app) => {
        outcome = await outcomeOf(() => app.acme.obtain([primary]))
        if (!outcome.code && !outcome.uncoded) outcome = { code: corruptionLogged(ctx.logFile, primary) ?? 'none logged' }
      })
      const after = await raw.get(key)
      const kept = await keptAside(raw, primary, before)
      const unchanged = before !== null && after !== null && Buffer.compare(Buffer.from(before), Buffer.from(after)) === 0
      return { ...outcome, dataKept: { rule: 'the unreadable value stays, or is kept beside the new one', held: unchanged || kept } }
    },
  }
}

/** The error code the plugin logged for this name's unreadable value. */
function corruptionLogged (logFile: string, name: string): string | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n').reverse()) {
    if (!line.includes(name)) continue
    const code = /"code":"(ERR_ACME_[A-Z_]+)"/.exec(line)?.[1]
    if (code) return code
  }
  return undefined
}

async function keptAside (storage: Storage, primary: string, original: Uint8Array | null): Promise<boolean> {
  if (!original) return false
  for (const key of await storage.list(StorageKeys.certificateDir(primary))) {
    if (!/unreadable/.test(key)) continue
    const bytes = await storage.get(key)
    if (bytes && bytes.length > 0) return true
  }
  return false
}

const json = (t: Template, name: string, patch: Record<string, unknown> = {}) => JSON.stringify({ ...t.bundle, names: [name], ...patch })
const keyA = randomBytes(32)

export const storedCases: BadInputCase[] = [
  storedCase('a truncated PEM certificate', 'ERR_ACME_STORAGE_CORRUPT', (t, n) => json(t, n, { certificate: (t.bundle.certificate as string).slice(0, 300) })),
  storedCase('a private key that does not match its certificate', 'ERR_ACME_STORAGE_CORRUPT', (t, n) => json(t, n, { privateKey: t.otherKey })),
  storedCase('corrupted JSON', 'ERR_ACME_STORAGE_CORRUPT', (t, n) => json(t, n).slice(0, 120)),
  storedCase('JSON that is not a bundle', 'ERR_ACME_STORAGE_CORRUPT', () => '{"hello":"world"}'),
  storedCase('a 2 MB value of random bytes', 'ERR_ACME_STORAGE_CORRUPT', () => randomBytes(2 * 1024 * 1024)),
  storedCase('ciphertext under another key (encryptedStorage)', 'ERR_ACME_STORAGE_CORRUPT', (t, n) => json(t, n), { writeKey: keyA, readKey: randomBytes(32) }),
  storedCase('a flipped byte in an encrypted value', 'ERR_ACME_STORAGE_CORRUPT', (t, n) => json(t, n), { writeKey: keyA, readKey: keyA, tamper: true }),
  storedCase('a corrupted account', 'ERR_ACME_STORAGE_CORRUPT', () => '{"version":1,"accountKey":', {
    key: (_name, ctx) => StorageKeys.account(issuerKeyOf(ctx.proxy.directoryUrl), undefined),
  }),
]
