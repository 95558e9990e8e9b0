// Production entry point: configuration comes from the environment.
//   ACME_DOMAINS=example.com,www.example.com ACME_EMAIL=ops@example.com \
//   ACME_DIRECTORY_URL=letsencrypt ACME_TERMS_OF_SERVICE_AGREED=true pnpm start
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'

const app = Fastify({ https: acmeHttps(), logger: true })
app.get('/', async (request) => ({ hello: request.hostname }))
await app.register(fastifyAcme)
await app.listen({ port: Number(process.env.PORT ?? 443), host: process.env.HOST ?? '::' })
