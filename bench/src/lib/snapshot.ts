import { cpSync, existsSync, mkdirSync, readdirSync, realpathSync, symlinkSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const ROOT = path.resolve(BENCH, '..')
/** the workspace packages the apps import, by package name */
const WORKSPACE = { '@fastify-acme/core': 'packages/core', '@fastify-acme/storage-adapters': 'packages/storage-adapters', 'fastify-acme': 'packages/fastify-acme' }

/**
 * Copies what the measured processes run into `dir`: bench/apps, and a node_modules with the
 * workspace packages' package.json + dist (copied right after `pnpm build`) and every other
 * dependency linked to its real installed path. Measured processes then run the same built
 * code, but another `pnpm build` in the shared tree (which deletes dist/) cannot break a run.
 * Returns the apps directory inside the snapshot.
 */
export function snapshotBuild (dir: string): string {
  const modules = path.join(dir, 'node_modules')
  for (const [name, rel] of Object.entries(WORKSPACE)) {
    const from = path.join(ROOT, rel)
    if (!existsSync(path.join(from, 'dist', 'index.js'))) throw new Error(`${rel}/dist is missing: run pnpm build first (pnpm bench does)`)
    const to = path.join(modules, name)
    mkdirSync(to, { recursive: true })
    cpSync(path.join(from, 'package.json'), path.join(to, 'package.json'))
    cpSync(path.join(from, 'dist'), path.join(to, 'dist'), { recursive: true })
  }
  for (const owner of [BENCH, ...Object.values(WORKSPACE).map((rel) => path.join(ROOT, rel))]) {
    for (const name of installed(path.join(owner, 'node_modules'))) {
      const link = path.join(modules, name)
      if (name in WORKSPACE || name.startsWith('@fastify-acme/') || existsSync(link)) continue
      mkdirSync(path.dirname(link), { recursive: true })
      symlinkSync(realpathSync(path.join(owner, 'node_modules', name)), link, 'dir')
    }
  }
  const apps = path.join(dir, 'apps')
  cpSync(path.join(BENCH, 'apps'), apps, { recursive: true })
  return apps
}

/** Package names in a node_modules directory (scoped ones as @scope/name). */
function installed (modules: string): string[] {
  if (!existsSync(modules)) return []
  return readdirSync(modules).filter((entry) => !entry.startsWith('.')).flatMap((entry) => entry.startsWith('@')
    ? readdirSync(path.join(modules, entry)).map((name) => `${entry}/${name}`)
    : [entry])
}
