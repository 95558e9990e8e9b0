// Production entry point.
//   ZONE=example.com DNS_SERVER=ns1.example.com:53 TSIG_NAME=acme-update TSIG_SECRET=... \
//   ACME_EMAIL=ops@example.com ACME_DIRECTORY_URL=letsencrypt ACME_TERMS_OF_SERVICE_AGREED=true pnpm start
// Also: TSIG_ALGORITHM (default hmac-sha256), DATA_DIR (acme-data), HOST (::), PORT (443).
import type { TsigAlgorithm } from '@fastify-acme/core/dns/rfc2136'
import path from 'node:path'
import { buildApp } from './app.js'

const required = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`set ${name}`)
  return value
}

const app = await buildApp({
  zone: required('ZONE'),
  dns: {
    server: required('DNS_SERVER'),
    tsig: {
      name: required('TSIG_NAME'),
      secret: required('TSIG_SECRET'),
      algorithm: (process.env.TSIG_ALGORITHM ?? 'hmac-sha256') as TsigAlgorithm,
    },
  },
  dataDir: path.resolve(process.env.DATA_DIR ?? 'acme-data'),
  logger: true,
})
await app.listen({ port: Number(process.env.PORT ?? 443), host: process.env.HOST ?? '::' })
