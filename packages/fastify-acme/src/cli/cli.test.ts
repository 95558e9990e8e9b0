import { createCertificateManager, readLeaf } from '@fastify-acme/core'
import { getText } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify, { type FastifyInstance } from 'fastify'
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pointName, uniqueLoopbackAddress } from '../../test/fixtures.js'
import fastifyAcme from '../index.js'
import { cli, json } from './cli.test-run.js'

describe('fastify-acme CLI against Pebble and fs storage', () => {
  const { pebble } = services()
  const work = mkdtempSync(path.join(tmpdir(), 'fastify-acme-cli-'))
  const storageA = `file://${path.join(work, 'a')}`
  const storageB = `file://${path.join(work, 'b')}`
  const caFile = path.join(work, 'pebble-ca.pem')
  const ca = { ACME_DIRECTORY_URL: pebble.directoryUrl, ACME_CA_BUNDLE: caFile }
  const address = uniqueLoopbackAddress()
  let name = ''
  let www = ''
  let app: FastifyInstance | undefined
  let firstSerial = ''

  beforeAll(async () => {
    writeFileSync(caFile, pebble.caBundle)
    name = await pointName(address, 'cli')
    www = await pointName(address, 'www-cli')
    // the app obtains the certificate; it keeps running, so it answers the CLI's HTTP-01 tokens from the shared storage
    app = Fastify()
    await app.register(fastifyAcme, {
      directoryUrl: pebble.directoryUrl,
      caBundle: pebble.caBundle,
      termsOfServiceAgreed: true,
      email: 'ops@example.test',
      env: false,
      domains: [name, www],
      storage: fsStorage({ dir: path.join(work, 'a') }),
      challenges: { http01: { port: pebble.httpPort, host: address, redirect: false } },
    })
    const obtained = new Promise<{ serial: string }>((resolve) => app!.acme.once('obtained', resolve))
    await app.listen({ port: 0, host: address })
    firstSerial = (await obtained).serial
    await app.acme.renew(name) // let the order settle
  }, 60_000)
  afterAll(async () => {
    await app?.close()
    rmSync(work, { recursive: true, force: true })
  })

  it('list --json shows the certificate the app obtained; list prints a table', async () => {
    const doc = json(await cli(['list', '--json', '--storage', storageA]))
    expect(doc.ok).toBe(true)
    expect(doc.certificates).toHaveLength(1)
    const [cert] = doc.certificates
    expect(cert).toMatchObject({ name, names: [name, www], status: 'valid', serial: firstSerial, failures: 0, renewal: { reason: 'ratio' } })
    expect(cert.issuer.commonName).toMatch(/^Pebble Intermediate CA/)
    expect(cert.daysLeft).toBeGreaterThan(1000)
    expect(JSON.stringify(doc)).not.toContain('PRIVATE KEY')

    const table = await cli(['list'], { env: { ACME_STORAGE: storageA } })
    expect(table.code).toBe(0)
    const [header, row] = table.stdout.trim().split('\n')
    expect(header).toMatch(/^NAME\s+ISSUER\s+NOT AFTER \(UTC\)\s+DAYS LEFT\s+NEXT RENEWAL \(UTC\)\s+LAST ERROR$/)
    expect(row).toContain(`${name} (+1)`)
    expect(row).toMatch(/\(ratio\)\s+-$/)
  })

  it('renew: not due without --force; --force changes the serial (the running app answers HTTP-01)', async () => {
    const notDue = await cli(['renew', www, '--json', '--storage', storageA], { env: ca })
    expect(notDue.code, notDue.stderr).toBe(0)
    expect(json(notDue)).toMatchObject({ ok: true, name, renewed: false, serialBefore: firstSerial, serialAfter: firstSerial })

    const forced = await cli(['renew', name, '--force', '--json', '--verbose', '--storage', storageA], { env: ca })
    expect(forced.code, forced.stderr).toBe(0)
    const doc = json(forced)
    expect(doc).toMatchObject({ ok: true, name, names: [name, www], renewed: true, serialBefore: firstSerial })
    expect(doc.serialAfter).not.toBe(firstSerial)
    expect(forced.stderr).toContain('certificate renewed')
    expect(forced.stdout + forced.stderr).not.toContain('PRIVATE KEY')
    expect(json(await cli(['list', '--json', '--storage', storageA])).certificates[0].serial).toBe(doc.serialAfter)
  })

  it('export/import round trip: PEM files, another storage, served there without a new order', async () => {
    const out = path.join(work, 'exported')
    const exported = await cli(['export', www, '--out', out, '--json', '--storage', storageA])
    expect(exported.code, exported.stderr).toBe(0)
    const files = json(exported).files
    for (const file of Object.values(files) as string[]) expect(statSync(file).mode & 0o777, file).toBe(0o600)
    expect(new X509Certificate(readFileSync(files.cert)).subjectAltName).toContain(`DNS:${www}`)
    expect(readFileSync(files.fullchain, 'utf8')).toBe(readFileSync(files.cert, 'utf8') + readFileSync(files.chain, 'utf8'))
    expect(exported.stdout).not.toContain('PRIVATE KEY')
    expect((await cli(['export', www, '--out', out, '--storage', storageA])).code).toBe(1) // files exist, no --force
    expect((await cli(['export', www, '--out', files.cert, '--storage', storageA])).code).toBe(2) // --out names a file

    const imported = await cli(['import', name, '--cert', files.cert, '--chain', files.chain, '--key', files.privkey, '--json', '--storage', storageB], { env: ca })
    expect(imported.code, imported.stderr).toBe(0)
    const serial = readLeaf(readFileSync(files.cert, 'utf8')).serial
    expect(json(imported).imported).toMatchObject({ name, names: [name, www], serial })
    expect((await cli(['import', name, '--cert', files.fullchain, '--key', files.privkey, '--storage', storageB])).code).toBe(1) // stored, no --force
    const overlap = await cli(['import', www, '--cert', files.fullchain, '--key', files.privkey, '--json', '--storage', storageB])
    expect(overlap.code).toBe(1) // the certificate stored under `name` covers www already
    expect(json(overlap).error.message).toContain(`the stored certificate ${name} already covers ${name}, ${www}`)

    const back = json(await cli(['export', name, '--json', '--include-key', '--storage', storageB]))
    expect(back.certificate).toBe(readFileSync(files.fullchain, 'utf8'))
    expect(back.privateKey).toBe(readFileSync(files.privkey, 'utf8'))
    expect(json(await cli(['list', '--json', '--storage', storageB])).certificates[0]).toMatchObject({ name, serial, issuer: { key: expect.stringMatching(/-dir$/) } })

    const manager = createCertificateManager({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, storage: fsStorage({ dir: path.join(work, 'b') }) })
    const orders: unknown[] = []
    manager.on('obtaining', (e) => orders.push(e))
    await manager.manage([name, www])
    expect(manager.list()[0]).toMatchObject({ serial, status: 'valid' })
    expect(orders).toEqual([])
    await manager.close()

    // without --directory the issuer is 'imported': served until due, then renewed with the app's CA
    const storageC = `file://${path.join(work, 'c')}`
    expect((await cli(['import', name, '--cert', files.fullchain, '--key', files.privkey, '--storage', storageC])).code).toBe(0)
    expect(json(await cli(['list', '--json', '--storage', storageC])).certificates[0]).toMatchObject({ name, serial, issuer: { key: 'imported' } })
    const adopter = createCertificateManager({ directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, storage: fsStorage({ dir: path.join(work, 'c') }) })
    adopter.on('obtaining', (e) => orders.push(e))
    await adopter.manage([name, www])
    expect(adopter.list()[0]).toMatchObject({ serial, status: 'valid' })
    expect(orders).toEqual([])
    await adopter.close()
    // a failed renewal prints its error once (the per-issuer warning repeated it)
    const failed = await cli(['renew', name, '--force', '--directory', 'https://127.0.0.1:1/dir', '--storage', storageC])
    expect(failed.code).toBe(1)
    // (beside the progress line a slow renewal prints)
    const lines = failed.stderr.trim().split('\n').filter((l) => !l.includes('waiting for the CA'))
    expect(lines, failed.stderr).toEqual([expect.stringContaining('cannot reach the CA at https://127.0.0.1:1')])

    // --cert fullchain.pem plus --chain chain.pem: the intermediate is stored once
    const storageE = `file://${path.join(work, 'e')}`
    expect((await cli(['import', name, '--cert', files.fullchain, '--chain', files.chain, '--key', files.privkey, '--storage', storageE])).code).toBe(0)
    expect(json(await cli(['export', name, '--json', '--storage', storageE])).certificate).toBe(readFileSync(files.fullchain, 'utf8'))

    // ACME_STORAGE_KEYS: the command reads and writes an encrypted storage as the apps do
    const keys = { ACME_STORAGE_KEYS: `k1:${randomBytes(32).toString('base64')}` }
    const storageD = `file://${path.join(work, 'd')}`
    expect((await cli(['import', name, '--cert', files.fullchain, '--key', files.privkey, '--storage', storageD], { env: keys })).code).toBe(0)
    const raw = readFileSync(path.join(work, 'd', 'certificates', name, 'bundle.json'))
    expect(raw.subarray(0, 3).toString('latin1')).toBe('FAE')
    expect(json(await cli(['list', '--json', '--storage', storageD], { env: keys })).certificates[0]).toMatchObject({ name, serial, status: 'valid' })
    expect(json(await cli(['export', name, '--json', '--include-key', '--storage', storageD], { env: keys })).privateKey).toBe(readFileSync(files.privkey, 'utf8'))
    // without the keys, an import into that storage is refused (the key would land in plaintext)
    const plain = await cli(['import', name, '--cert', files.fullchain, '--key', files.privkey, '--force', '--json', '--storage', storageD])
    expect(plain.code).toBe(2)
    expect(json(plain).error.message).toContain('ACME_STORAGE_KEYS')
    expect(readFileSync(path.join(work, 'd', 'certificates', name, 'bundle.json')).subarray(0, 3).toString('latin1')).toBe('FAE')
    const badKeys = await cli(['list', '--json', '--storage', storageD], { env: { ACME_STORAGE_KEYS: 'k1:c2hvcnQ=' } })
    expect(json(badKeys).error).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining('ACME_STORAGE_KEYS') })
    // without the keys, export and renew say so (they said "no stored certificate", exit 4)
    const keyless = await cli(['export', www, '--json', '--storage', storageD])
    expect(keyless.code).toBe(2)
    expect(json(keyless).error.message).toContain('set ACME_STORAGE_KEYS')
    // with other keys, or into a plaintext storage, an import is refused: the apps could not read it
    const otherKeys = { ACME_STORAGE_KEYS: `k2:${randomBytes(32).toString('base64')}` }
    for (const [storage, env] of [[storageD, otherKeys], [storageE, keys]] as const) {
      const refused = await cli(['import', name, '--cert', files.fullchain, '--key', files.privkey, '--force', '--json', '--storage', storage], { env })
      expect(refused.code, storage).toBe(2)
      expect(json(refused).error.message).toContain('ACME_STORAGE_KEYS cannot read the certificates already in this storage')
    }
    expect(json(await cli(['list', '--json', '--storage', storageE])).certificates[0]).toMatchObject({ name, status: 'valid' })

    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' })
    writeFileSync(path.join(work, 'stranger.pem'), stranger)
    const mismatch = await cli(['import', name, '--cert', files.fullchain, '--key', path.join(work, 'stranger.pem'), '--force', '--json', '--storage', storageB])
    expect(mismatch.code).toBe(1)
    expect(json(mismatch).error.code).toBe('ERR_KEY_MISMATCH')
  })

  it('revoke needs --yes, then revokes at the CA and deletes from storage', async () => {
    expect((await cli(['revoke', name, '--storage', storageA], { env: ca })).code).toBe(2)
    const serial = json(await cli(['list', '--json', '--storage', storageA])).certificates[0].serial
    const revoked = await cli(['revoke', name, '--yes', '--reason', '4', '--json', '--storage', storageA], { env: ca })
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(json(revoked)).toMatchObject({ ok: true, revoked: true, serial, reason: 4 })
    const status = JSON.parse(await getText(`${pebble.managementUrl}/cert-status-by-serial/${serial}`, pebble.caBundle))
    expect(status.Status).toBe('Revoked')
    expect(json(await cli(['list', '--json', '--storage', storageA])).certificates).toEqual([])
    const gone = await cli(['export', name, '--json', '--storage', storageA])
    expect(gone.code).toBe(4)
    expect(json(gone)).toMatchObject({ ok: false, error: { code: 'ERR_NOT_FOUND' } })
    // the copy imported without --directory (storage c) goes to the CA named by ACME_DIRECTORY_URL
    // (not a failure on 'imported'), which says it is revoked already: done, and deleted there too
    const imported = await cli(['revoke', name, '--yes', '--json', '--storage', `file://${path.join(work, 'c')}`], { env: { ...ca, ACME_TERMS_OF_SERVICE_AGREED: 'true' } })
    expect(json(imported), imported.stderr).toMatchObject({ ok: true, revoked: true, serial })
    expect(json(await cli(['list', '--json', '--storage', `file://${path.join(work, 'c')}`])).certificates).toEqual([])
  })

  it('--help exits 0; usage errors exit 2 with one JSON document under --json', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Exit codes:')
    expect((await cli(['renew', '--help'])).stdout).toContain('Usage: fastify-acme renew <name>')
    expect((await cli(['help', 'doctor'])).code).toBe(0)
    const unknown = await cli(['frobnicate', '--json'])
    expect(unknown.code).toBe(2)
    expect(json(unknown)).toMatchObject({ ok: false, error: { code: 'ERR_USAGE' } })
    expect((await cli([])).code).toBe(2)
    const bare = await cli(['--json'])
    expect(bare.code).toBe(2)
    expect(json(bare)).toMatchObject({ ok: false, error: { code: 'ERR_USAGE' } })
    expect((await cli(['list', 'extra'])).code).toBe(2)
    expect((await cli(['list', '--bogus'])).code).toBe(2)
    expect((await cli(['list', '--cert', 'x.pem'])).stderr).toContain('does not apply to "list"')
    expect((await cli(['renew'])).code).toBe(2)
    expect((await cli(['list', '--storage', 'ftp://nope'])).code).toBe(2)
    expect(json(await cli(['list', '--json', '--ca-bundle', path.join(work, 'no-such.pem')])).error.message).toMatch(/^--ca-bundle /)
    const badCa = await cli(['doctor', '--directory', 'bogusca', '--json'])
    expect(badCa.code).toBe(2)
    expect(json(badCa).error.message).toContain('"bogusca"')
    // what the apps would refuse (a scheme-less host, plain http off loopback) is refused here too, naming the flag
    for (const directory of ['localhost:14000/dir', 'http://acme.example.com/directory']) {
      const refused = await cli(['list', '--directory', directory, '--json'])
      expect(refused.code, directory).toBe(2)
      expect(json(refused).error.message).toMatch(/^--directory must be/)
    }
    expect(json(await cli(['list', '--json'], { env: { ACME_KEY_TYPE: 'rsa4096' } })).error.message).toMatch(/^ACME_KEY_TYPE must be one of/)
    const badDns = await cli(['doctor', '--dns-server', 'notanip', '--json'])
    expect(badDns.code).toBe(2)
    expect(json(badDns).error.message).toContain('--dns-server')
    const keyOnly = path.join(work, 'key-only.pem')
    writeFileSync(keyOnly, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const notPem = await cli(['import', 'x.example.test', '--cert', keyOnly, '--key', keyOnly, '--json'])
    expect(json(notPem).error.message).toContain(`the --cert file ${keyOnly} holds no PEM certificate`)
    // a mistyped storage path is an error, not an empty storage (and is not created)
    const typo = path.join(work, 'typo', 'deep')
    const missing = await cli(['list', '--json', '--storage', `file://${typo}`])
    expect(missing.code).toBe(1)
    expect(json(missing).error).toMatchObject({ code: 'ERR_ACME_STORAGE', message: expect.stringContaining('does not exist') })
    expect(existsSync(typo)).toBe(false)
  })
})
