// Writes `count` valid certificate bundles (one name each) into an fs storage dir, fast: one leaf
// is issued by the embedded local CA, then re-signed by the same intermediate for every other
// name (same key, new name and serial). Usage: node seed-certs.mjs <dir> <count>
// Prints one JSON line: {"count","ms","names":[first,last],"root"}.
import { X509Certificate, createPrivateKey, randomBytes, sign } from 'node:crypto'
import { StorageKeys, certIdOf, createCsr, createLocalIssuer, generatePrivateKey, readLeaf, verifyBundle } from '@fastify-acme/core'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import { assembleCertificate, splitCertificate, toPem } from './lib/der.mjs'
import { benchName } from './lib/names.mjs'

const LEAF_LIFETIME_MS = 3 * 86_400_000
const WRITERS = 256

const [dir, countArg] = process.argv.slice(2)
const count = Number(countArg)
const started = performance.now()
const storage = fsStorage({ dir })
const issuer = createLocalIssuer({ storage, leafLifetimeMs: LEAF_LIFETIME_MS })
const privateKey = await generatePrivateKey('ec-p256')
const first = benchName(0)
const chain = (await issuer.issue({ names: [first], csr: await createCsr([first], privateKey) })).certificate
const leafPem = chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 26)
const intermediatePem = chain.slice(leafPem.length).trim() + '\n'
const stored = JSON.parse((await storage.get(StorageKeys.localCa('intermediate'))).toString())
const caKey = createPrivateKey(stored.privateKey)
const caCert = new X509Certificate(stored.certificate)

const template = new X509Certificate(leafPem)
const { tbs, algorithm } = splitCertificate(template.raw)
const nameAt = occurrences(tbs, Buffer.from(first))
const serial = Buffer.from(template.serialNumber, 'hex')
const serialAt = tbs.indexOf(serial)
if (nameAt.length !== 2 || serialAt < 0) throw new Error(`unexpected template: ${nameAt.length} name occurrences, serial at ${serialAt}`)

const facts = readLeaf(chain)
const aki = certIdOf(chain).split('.')[0]

/** The template with another name and a fresh serial (DER INTEGER content: positive, same length), re-signed. */
function leafFor (name) {
  const copy = Buffer.from(tbs)
  for (const at of nameAt) copy.write(name, at, 'latin1')
  const fresh = randomBytes(serial.length)
  fresh[0] = (fresh[0] & 0x7f) || 1
  fresh.copy(copy, serialAt)
  return { pem: toPem(assembleCertificate(copy, algorithm, sign('sha256', copy, caKey))), serial: fresh }
}

function bundleOf (name) {
  const leaf = leafFor(name)
  return {
    version: 1,
    names: [name],
    certificate: leaf.pem + intermediatePem,
    privateKey,
    keyType: 'ec-p256',
    issuer: { key: 'local', directoryUrl: 'local', commonName: facts.issuerCommonName },
    serial: leaf.serial.toString('hex'),
    notBefore: facts.notBefore.toISOString(),
    notAfter: facts.notAfter.toISOString(),
    certId: `${aki}.${leaf.serial.toString('base64url')}`,
    obtainedAt: new Date().toISOString(),
  }
}

let next = 0
await Promise.all(Array.from({ length: WRITERS }, async () => {
  while (next < count) {
    const name = benchName(next++)
    const bundle = bundleOf(name)
    if (next <= 3) check(bundle)
    await storage.put(StorageKeys.certificateBundle(name), JSON.stringify(bundle))
  }
}))
await storage.close?.()
const root = await issuer.rootCertificate()
process.stdout.write(JSON.stringify({ count, ms: Math.round(performance.now() - started), names: [first, benchName(count - 1)], root }) + '\n')

/** The first bundles are checked the way the manager and a TLS client will: key, signature, facts. */
function check (bundle) {
  verifyBundle(bundle)
  const facts = readLeaf(bundle.certificate)
  if (!new X509Certificate(bundle.certificate).verify(caCert.publicKey)) throw new Error('re-signed leaf does not verify')
  if (facts.serial !== bundle.serial || facts.names[0] !== bundle.names[0] || certIdOf(bundle.certificate) !== bundle.certId) {
    throw new Error(`re-signed leaf does not match its bundle: ${JSON.stringify(facts)}`)
  }
}

function occurrences (haystack, needle) {
  const out = []
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) out.push(at)
  return out
}
