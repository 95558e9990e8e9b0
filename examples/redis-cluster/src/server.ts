// One instance of the cluster. Start as many as you like with the same REDIS_URL:
//   REDIS_URL=redis://redis.internal:6379/0 ACME_DOMAINS=example.com ACME_EMAIL=ops@example.com \
//   ACME_DIRECTORY_URL=letsencrypt ACME_TERMS_OF_SERVICE_AGREED=true pnpm start
// Also: REDIS_NAMESPACE (default fastify-acme), HOST (::), PORT (443), and every ACME_* variable
// of the plugin (ACME_HTTP_PORT, ACME_HTTP_HOST, ACME_CA_BUNDLE, ...).
import { buildApp } from './app.js'

const app = await buildApp({
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0',
  ...(process.env.REDIS_NAMESPACE ? { namespace: process.env.REDIS_NAMESPACE } : {}),
  logger: true,
})
await app.listen({ port: Number(process.env.PORT ?? 443), host: process.env.HOST ?? '::' })

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
