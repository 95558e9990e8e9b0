// One fastify-acme app in its own process, driven by the parent over IPC.
// Run: node --conditions=source --import tsx src/app/app.ts, with RELIABILITY_APP = AppConfig JSON.
// Events: ready, listening, locked, obtaining, obtained, renewed, updated, failed, fatal.
// Commands: listen, list, obtain, memory, close.
import { encryptedStorage, type Storage } from '@fastify-acme/core'
import { storageFromUrl } from '@fastify-acme/storage-adapters'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps } from 'fastify-acme'
import type { AppConfig } from './config.js'

const config = JSON.parse(process.env.RELIABILITY_APP ?? '{}') as AppConfig
const send = (event: string, fields: Record<string, unknown> = {}) => {
  process.send?.({ event, at: Date.now(), ...fields })
}

process.on('uncaughtException', (err) => { send('fatal', { error: err.stack ?? String(err) }); process.exit(70) })
process.on('unhandledRejection', (err) => { send('fatal', { error: (err as Error)?.stack ?? String(err) }); process.exit(70) })

const app = Fastify({ https: acmeHttps(), logger: { level: 'debug', file: config.logFile } })
const storageLog = { warn: (message: string) => app.log.warn({ storage: true }, message) }
let storage: Storage = await storageFromUrl(config.storageUrl, { redis: { logger: storageLog }, s3: { logger: storageLog } })
if (config.encryptionKey) storage = encryptedStorage(storage, { keys: [{ id: 'k1', key: Buffer.from(config.encryptionKey, 'base64') }] })

app.get('/', async () => config.id)
await app.register(fastifyAcme, {
  env: false,
  directoryUrl: config.directoryUrl,
  caBundle: config.caBundle,
  termsOfServiceAgreed: true,
  ...(config.email ? { email: config.email } : {}),
  ...(config.eab ? { eab: config.eab } : {}),
  ...(config.names.length > 0 ? { domains: config.names.map((name) => [name]) } : {}),
  ...(config.lockTtlMs ? { lockTtlMs: config.lockTtlMs } : {}),
  ...(config.onDemandSuffix ? { onDemand: { allow: (name: string) => name.endsWith(config.onDemandSuffix!) } } : {}),
  storage,
  challenges: { http01: { port: config.httpPort, host: config.address } },
})

for (const event of ['locked', 'obtaining', 'obtained', 'renewed', 'updated', 'failed'] as const) {
  app.acme.on(event, (payload) => {
    const { error, ...rest } = payload as unknown as Record<string, unknown> & { error?: { code?: string, message?: string } }
    send(event, { ...rest, ...(error ? { code: error.code, message: error.message } : {}) })
  })
}

// Ready (the HTTP-01 listener is up) but not listening: orders start at listen, and the parent
// sends 'listen' once every app of the scenario is ready, so that the CA never validates at an
// app still starting up.
await app.ready()
send('ready')

type Handler = (message: Record<string, unknown>) => Promise<Record<string, unknown>>
const handlers: Record<string, Handler> = {
  listen: async () => {
    await app.listen({ host: config.address, port: config.httpsPort ?? 0 })
    send('listening', { port: (app.server.address() as { port: number }).port, pid: process.pid })
    return {}
  },
  list: async () => ({ certificates: app.acme.list().map((c) => ({ names: c.names, status: c.status, serial: c.serial ?? null })) }),
  obtain: async ({ names }) => {
    try {
      const info = await app.acme.obtain(names as string[])
      return { serial: info.serial }
    } catch (err) {
      return { code: (err as { code?: string }).code ?? null, message: (err as Error).message }
    }
  },
  memory: async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return { memory: process.memoryUsage() }
  },
  close: async () => {
    await app.close()
    setImmediate(() => process.exit(0))
    return {}
  },
}

process.on('message', (message: Record<string, unknown>) => {
  const handler = handlers[String(message.cmd)]
  if (!handler) return send('reply', { id: message.id, error: `unknown command ${String(message.cmd)}` })
  handler(message).then(
    (reply) => send('reply', { id: message.id, ...reply }),
    (err: Error) => send('reply', { id: message.id, error: err.stack ?? String(err) })
  )
})
process.on('disconnect', () => process.exit(0))
