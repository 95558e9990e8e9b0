// What one TLS context costs to build on this Node/OpenSSL, part by part: the profile behind
// handshake.sni_10k_ratio (a handshake to a name whose context is not built pays for one).
// Usage (after pnpm build): node bench/apps/context-cost.mjs
import { createPrivateKey } from 'node:crypto'
import tls from 'node:tls'
import { createCsr, createLocalIssuer, generatePrivateKey, memoryStorage } from '@fastify-acme/core'

const key = await generatePrivateKey('ec-p256')
const issuer = createLocalIssuer({ storage: memoryStorage() })
const { certificate: chain } = await issuer.issue({ names: ['cost.bench.test'], csr: await createCsr(['cost.bench.test'], key) })
const N = 2000

function timeIt (label, fn) {
  for (let i = 0; i < 200; i++) fn()
  const started = process.hrtime.bigint()
  for (let i = 0; i < N; i++) fn()
  const us = Number(process.hrtime.bigint() - started) / 1000 / N
  console.log(`${label.padEnd(44)} ${us.toFixed(0).padStart(5)} µs`)
}

console.log(`Node ${process.version}, OpenSSL ${process.versions.openssl}; EC P-256 leaf + intermediate`)
timeIt('createSecureContext({})', () => tls.createSecureContext({}))
timeIt('createSecureContext({ cert: chain })', () => tls.createSecureContext({ cert: chain }))
timeIt('createSecureContext({ key })', () => tls.createSecureContext({ key }))
timeIt('createSecureContext({ key, cert: chain })', () => tls.createSecureContext({ key, cert: chain }))
timeIt('createPrivateKey(pem) alone', () => createPrivateKey(key))
