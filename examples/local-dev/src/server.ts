// Development entry point: HTTPS on https://app.localhost:8443 from the embedded local CA.
//   pnpm start
//   curl --cacert .acme-dev/local-root.pem https://app.localhost:8443/
// Settings: DOMAINS (comma-separated, default app.localhost), HOST (127.0.0.1), PORT (8443),
// DATA_DIR (.acme-dev).
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { buildApp } from './app.js'

const domains = (process.env.DOMAINS ?? 'app.localhost').split(',').map((d) => d.trim()).filter(Boolean)
const dataDir = path.resolve(process.env.DATA_DIR ?? '.acme-dev')
const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 8443)

const app = await buildApp({ domains, dataDir })
await app.listen({ port, host })
await app.acme.manage(domains) // resolves once the certificate is served

// the root to trust once: curl --cacert, NODE_EXTRA_CA_CERTS, or your OS and browser trust store
const rootFile = path.join(dataDir, 'local-root.pem')
await writeFile(rootFile, (await app.acme.localRootCertificate())!)
const { port: bound } = app.server.address() as { port: number }
process.stdout.write(`${JSON.stringify({ url: `https://${domains[0]}:${bound}/`, host, port: bound, rootFile })}\n`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
