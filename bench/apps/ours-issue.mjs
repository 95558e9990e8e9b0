// fastify-acme getting certificates from an ACME CA (Pebble) at startup, one per name, with
// fresh fs storage: what a user's app does on its first start. The runner times it from
// spawn to the first valid HTTPS response for every name.
// BENCH_CONFIG = {"names","dir","directoryUrl","caBundleFile","email","host","port","httpPort"}
import { readFileSync } from 'node:fs'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'

const config = JSON.parse(process.env.BENCH_CONFIG)
// BENCH_OURS_LOG=<dir>: a debug log per run in that directory (for looking into a failed run)
const logDir = process.env.BENCH_OURS_LOG
const logger = logDir ? { level: 'debug', file: `${logDir}/${config.names[0]}.log` } : false
const app = Fastify({ https: acmeHttps(), logger })
app.get('/', async () => 'ok')
await app.register(fastifyAcme, {
  domains: config.names.map((name) => [name]),
  directoryUrl: config.directoryUrl,
  caBundle: readFileSync(config.caBundleFile, 'utf8'),
  email: config.email,
  termsOfServiceAgreed: true,
  storage: fsStorage({ dir: config.dir }),
  challenges: { http01: { port: config.httpPort, host: config.host } },
})
app.acme.on('failed', ({ names, error }) => process.stderr.write(`order failed for ${names}: ${error.message}\n`))
await app.listen({ host: config.host, port: config.port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
