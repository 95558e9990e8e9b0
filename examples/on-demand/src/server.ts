// Production entry point. The allowed names come from ALLOWED_DOMAINS (comma-separated) here;
// a real app would look them up in its database. The CA and email come from ACME_*; storage is
// the directory DATA_DIR (default ./acme-data), so ACME_STORAGE is not read.
//   ALLOWED_DOMAINS=shop.example.com,blog.example.org ACME_EMAIL=ops@example.com \
//   ACME_DIRECTORY_URL=letsencrypt ACME_TERMS_OF_SERVICE_AGREED=true pnpm start
import path from 'node:path'
import { buildApp } from './app.js'

const allowed = new Set((process.env.ALLOWED_DOMAINS ?? '').split(',').map((d) => d.trim().toLowerCase()).filter(Boolean))
const app = await buildApp({
  allowed: (name) => allowed.has(name),
  dataDir: path.resolve(process.env.DATA_DIR ?? 'acme-data'),
  logger: true,
})
await app.listen({ port: Number(process.env.PORT ?? 443), host: process.env.HOST ?? '::' })
