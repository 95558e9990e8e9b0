import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT_DIR } from './samples.js'

/*
 * The proof that the packages install as users get them: each is packed with `pnpm pack` (which
 * applies publishConfig and rewrites workspace: ranges, as `pnpm publish` does), the three
 * tarballs go into a clean project with plain `npm install` (third-party dependencies from the
 * registry), and that project imports them, type-checks against them, runs the local CA through
 * them, and runs `npx fastify-acme --help`.
 */

const PACKAGES = ['core', 'storage-adapters', 'fastify-acme'] // in build order

/** the environment of a plain shell: without the npm_* settings pnpm and vitest pass down */
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|pnpm_)/i.test(key) && key !== 'NODE_OPTIONS'))

function run (command: string, args: string[], cwd: string, timeout = 120_000): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })
}

async function ok (command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd)
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${result.code}\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/** The newest modification time of the files under `dir` that the build compiles. */
function newestSource (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full))
    else if (entry.name.endsWith('.ts') && !/\.test(-[\w-]+)?\.ts$/.test(entry.name)) newest = Math.max(newest, statSync(full).mtimeMs)
  }
  return newest
}

/** Builds a package unless its dist/ is newer than every source file (a fresh clone has no dist/). */
async function buildIfStale (dir: string): Promise<void> {
  const built = path.join(dir, 'dist', 'index.js')
  if (existsSync(built) && statSync(built).mtimeMs >= newestSource(path.join(dir, 'src'))) return
  await ok('pnpm', ['run', 'build'], dir)
}

const CHECK_TS = `import Fastify from 'fastify'
import fastifyAcme, { acmeHttps, AcmeError, ErrorCodes, type FastifyAcmeOptions } from 'fastify-acme'
import { createCertificateManager, encryptedStorage, type CertificateManager, type Storage } from '@fastify-acme/core'
import { rfc2136Provider } from '@fastify-acme/core/dns/rfc2136'
import { storageFromUrl } from '@fastify-acme/storage-adapters'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'

const storage: Storage = fsStorage({ dir: './acme-data' })
const options: FastifyAcmeOptions = {
  domains: [['example.com', 'www.example.com'], ['*.example.org']],
  email: 'ops@example.com',
  termsOfServiceAgreed: true,
  directoryUrl: 'letsencrypt-staging',
  storage: encryptedStorage(storage, { keys: [{ id: 'k1', key: new Uint8Array(32) }] }),
  challenges: { http01: { port: 80 }, dns01: rfc2136Provider({ server: '192.0.2.53', tsig: { name: 'k', secret: 'c2VjcmV0' } }) },
  renewal: { ratio: 1 / 3 },
}
const app = Fastify({ https: acmeHttps() })
await app.register(fastifyAcme, options)
const manager: CertificateManager = app.acme
manager.on('obtained', (e) => { const serial: string = e.serial; void serial })
const err = new AcmeError(ErrorCodes.STORAGE, 'x')
const code: 'ERR_ACME_STORAGE' = ErrorCodes.STORAGE
void err; void code; void storageFromUrl; void createCertificateManager
// @ts-expect-error: the options are typed, so a typo fails to compile
await app.register(fastifyAcme, { domain: ['example.com'] })
`

const RUN_MJS = `import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'
import { createCertificateManager, ErrorCodes } from '@fastify-acme/core'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import { storageFromUrl } from '@fastify-acme/storage-adapters'

// the engine alone, through the local CA: no network
const manager = createCertificateManager({ directoryUrl: 'local', storage: fsStorage({ dir: './data-core' }) })
const info = await manager.obtain(['installed.localhost'])
await manager.close()

// the plugin, its fs default storage replaced by a storage URL
const app = Fastify({ https: acmeHttps() })
await app.register(fastifyAcme, { domains: ['app.localhost'], directoryUrl: 'local', env: false, challenges: { http01: false }, storage: await storageFromUrl('file:./data-plugin') })
await app.ready()
await app.acme.manage(['app.localhost'])
const served = app.acme.list()[0]
await app.close()
console.log(JSON.stringify({ core: info.status, plugin: served.status, issuer: served.issuer.commonName, code: ErrorCodes.STORAGE }))
`

describe('the packed packages', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'fastify-acme-install-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('install from their tarballs with plain npm, import, type-check, run, and `npx fastify-acme --help` works', async () => {
    const started = Date.now()
    const timings: Record<string, number> = {}
    const mark = (step: string, since: number) => { timings[step] = Date.now() - since }

    let t = Date.now()
    for (const name of PACKAGES) await buildIfStale(path.join(ROOT_DIR, 'packages', name))
    mark('build', t)

    t = Date.now()
    const tarballs = path.join(work, 'tarballs')
    mkdirSync(tarballs)
    await Promise.all(PACKAGES.map((name) => ok('pnpm', ['pack', '--pack-destination', tarballs], path.join(ROOT_DIR, 'packages', name))))
    const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz')).sort()
    expect(files.map((f) => f.replace(/-\d+\.\d+\.\d+[^/]*\.tgz$/, ''))).toEqual(['fastify-acme', 'fastify-acme-core', 'fastify-acme-storage-adapters'])
    mark('pack', t)

    t = Date.now()
    const project = path.join(work, 'project')
    mkdirSync(project)
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'install-check', private: true, type: 'module' }))
    await ok('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--prefer-offline',
      ...files.map((f) => path.join(tarballs, f)), 'fastify@5', '@types/node@20'], project)
    mark('npm install', t)
    // the internal dependencies came from the tarballs, one copy each, not from the registry
    const lock = JSON.parse(readFileSync(path.join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string }> }
    const copies = Object.keys(lock.packages).filter((key) => /node_modules\/(fastify-acme|@fastify-acme\/[\w-]+)$/.test(key))
    expect(copies.sort()).toEqual(['node_modules/@fastify-acme/core', 'node_modules/@fastify-acme/storage-adapters', 'node_modules/fastify-acme'])
    for (const key of copies) expect(lock.packages[key]!.resolved, key).toMatch(/^file:/)

    t = Date.now()
    writeFileSync(path.join(project, 'run.mjs'), RUN_MJS)
    const output = JSON.parse((await ok(process.execPath, ['run.mjs'], project)).trim())
    expect(output).toEqual({ core: 'valid', plugin: 'valid', issuer: expect.stringContaining('fastify-acme Local Authority'), code: 'ERR_ACME_STORAGE' })
    mark('import and run', t)

    t = Date.now()
    writeFileSync(path.join(project, 'check.ts'), CHECK_TS)
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
      files: ['check.ts'],
    }))
    const tsc = path.join(ROOT_DIR, 'node_modules', 'typescript', 'bin', 'tsc')
    await ok(process.execPath, [tsc, '-p', 'tsconfig.json'], project)
    mark('tsc', t)

    t = Date.now()
    const help = await run('npx', ['--no-install', 'fastify-acme', '--help'], project)
    expect(help.stderr).toBe('')
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/Usage: fastify-acme <command>/)
    for (const command of ['list', 'renew', 'revoke', 'import', 'export', 'doctor']) expect(help.stdout).toContain(command)
    mark('npx', t)

    console.log(`install check: ${Date.now() - started} ms ${JSON.stringify(timings)}`)
  }, 240_000)
})
