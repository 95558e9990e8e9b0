// Production entry point.
//   S3_BUCKET=my-certs S3_PREFIX=acme/prod AWS_REGION=eu-west-1 \
//   ACME_DOMAINS=example.com ACME_EMAIL=ops@example.com ACME_DIRECTORY_URL=letsencrypt \
//   ACME_TERMS_OF_SERVICE_AGREED=true pnpm start
// Credentials come from the AWS SDK's provider chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
// a profile, or the instance role). For an S3-compatible server set S3_ENDPOINT as well.
import { buildApp } from './app.js'

const app = await buildApp({
  s3: {
    bucket: process.env.S3_BUCKET ?? 'my-certs',
    prefix: process.env.S3_PREFIX ?? 'acme',
    ...(process.env.S3_ENDPOINT ? { endpoint: process.env.S3_ENDPOINT, forcePathStyle: true } : {}),
  },
  logger: true,
})
await app.listen({ port: Number(process.env.PORT ?? 443), host: process.env.HOST ?? '::' })
