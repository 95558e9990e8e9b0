// What one forced renewal costs in CPU, with fs storage and with the core's memory storage: the
// profile behind reload.p99_ratio (the bench's server is pinned to one core, so all of it competes
// with the handshakes). The 10 names are in use (one handshake each first), so each renewal also
// builds the new TLS context, as in the bench.
// Usage (after pnpm build): node bench/apps/renewal-cost.mjs [renewals, default 300]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import tls from 'node:tls'
import { memoryStorage } from '@fastify-acme/core'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'

const count = Number(process.argv[2] ?? 300)
const names = Array.from({ length: 10 }, (_, i) => `r${i}.cost.test`)

async function measure (label, storage) {
  const app = Fastify({ https: acmeHttps() })
  await app.register(fastifyAcme, { domains: names.map((name) => [name]), directoryUrl: 'local', storage, challenges: { http01: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address()
  const handshake = (servername) => new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => { socket.destroy(); resolve() })
    socket.on('error', reject)
  })
  const renew = (i) => app.acme.renew(names[i % names.length], { force: true })
  for (const name of names) await handshake(name)
  for (let i = 0; i < 30; i++) await renew(i)
  const loop = performance.eventLoopUtilization()
  const cpu = process.cpuUsage()
  for (let i = 0; i < count; i++) await renew(i)
  const { active } = performance.eventLoopUtilization(loop)
  const { user, system } = process.cpuUsage(cpu)
  const ms = (v) => (v / count).toFixed(2).padStart(5)
  console.log(`${label.padEnd(16)} CPU ${ms((user + system) / 1000)} ms (user ${ms(user / 1000)}, system ${ms(system / 1000)}), event loop ${ms(active)} ms`)
  await app.close()
}

console.log(`Node ${process.version}, OpenSSL ${process.versions.openssl}; per forced renewal (local CA), ${count} renewals`)
const dir = mkdtempSync(path.join(tmpdir(), 'renewal-cost-'))
try {
  await measure('fs storage', fsStorage({ dir }))
  await measure('memory storage', memoryStorage())
} finally {
  rmSync(dir, { recursive: true, force: true })
}
