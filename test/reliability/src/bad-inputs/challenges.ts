import { freePort, uniqueLoopbackAddress } from '@fastify-acme/harness'
import type { FastifyInstance } from 'fastify'
import net from 'node:net'
import type { BadInputCase, CaseContext, Outcome } from './table.js'
import { pluginApp } from './plugin-app.js'

const TOKEN = `tok_${'A'.repeat(39)}`
const IDENTIFIER = 'site.example.test'
const PATH = '/.well-known/acme-challenge/'

/** An app answering HTTP-01 on its route (and, with `listener`, on its own port-80 style listener) for one presented token. */
async function challengeApp (ctx: CaseContext, listener?: { host: string, port: number }): Promise<FastifyInstance> {
  const app = await pluginApp(ctx.logFile, {
    directoryUrl: ctx.env.pebble.directoryUrl, // an ACME issuer: the local CA needs no port-80 listener
    caBundle: ctx.env.pebble.caBundle,
    challenges: { http01: listener ? { port: listener.port, host: listener.host } : { port: false } },
  })
  await app.acme.http01.present({ identifier: { type: 'dns', value: IDENTIFIER }, wildcard: false, type: 'http-01', token: TOKEN, keyAuthorization: `${TOKEN}.thumbprint` })
  return app
}

/** A request through the app route (inject), or raw bytes to the port-80 listener. */
function viaRoute (url: string, headers: Record<string, string>): (ctx: CaseContext) => Promise<Outcome> {
  return async (ctx) => {
    const app = await challengeApp(ctx)
    try {
      const res = await app.inject({ url, headers })
      return { status: res.statusCode }
    } finally {
      await app.close()
    }
  }
}

function viaListener (request: string): (ctx: CaseContext) => Promise<Outcome> {
  return async (ctx) => {
    const listener = { host: uniqueLoopbackAddress(), port: await freePort() }
    const app = await challengeApp(ctx, listener)
    try {
      return { status: await rawStatus(listener.host, listener.port, request) }
    } finally {
      await app.close()
    }
  }
}

function rawStatus (host: string, port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let data = ''
    const socket = net.connect(port, host, () => socket.end(request))
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('end', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)))
    socket.on('error', reject)
  })
}

const get = (path: string, host: string | null, extra = '') =>
  `GET ${path} HTTP/1.1\r\n${host === null ? '' : `Host: ${host}\r\n`}${extra}Connection: close\r\n\r\n`

export const challengeCases: BadInputCase[] = [
  { group: 'challenge', name: 'route: the right token and Host answer 200', expect: { status: 200 }, run: viaRoute(`${PATH}${TOKEN}`, { host: IDENTIFIER }) },
  { group: 'challenge', name: 'route: path traversal (encoded ../)', expect: { status: 400 }, run: viaRoute(`${PATH}..%2F..%2Fetc%2Fpasswd`, { host: IDENTIFIER }) },
  { group: 'challenge', name: 'route: a 5,000-character token', expect: { status: 414 }, run: viaRoute(`${PATH}${'a'.repeat(5000)}`, { host: IDENTIFIER }) },
  { group: 'challenge', name: 'route: token outside the base64url alphabet', expect: { status: 400 }, run: viaRoute(`${PATH}${'a'.repeat(30)}%24%25%5E%26`, { host: IDENTIFIER }) },
  { group: 'challenge', name: 'route: a wrong Host', expect: { status: 404 }, run: viaRoute(`${PATH}${TOKEN}`, { host: 'evil.example.test' }) },
  { group: 'challenge', name: 'route: an unknown well-formed token', expect: { status: 404 }, run: viaRoute(`${PATH}${'B'.repeat(43)}`, { host: IDENTIFIER }) },
  { group: 'challenge', name: 'route: Host in upper case with a port answers 200', expect: { status: 200 }, run: viaRoute(`${PATH}${TOKEN}`, { host: 'SITE.Example.test:80' }) },
  { group: 'challenge', name: 'listener: path traversal (raw ../)', expect: { status: 400 }, run: viaListener(get(`${PATH}../../etc/passwd`, IDENTIFIER)) },
  { group: 'challenge', name: 'listener: a 6,000-character token', expect: { status: 400 }, run: viaListener(get(`${PATH}${'a'.repeat(6000)}`, IDENTIFIER)) },
  { group: 'challenge', name: 'listener: no Host header (HTTP/1.0)', expect: { status: 400 }, run: viaListener(`GET ${PATH}${TOKEN} HTTP/1.0\r\n\r\n`) },
  { group: 'challenge', name: 'listener: a wrong Host', expect: { status: 404 }, run: viaListener(get(`${PATH}${TOKEN}`, 'evil.example.test')) },
  { group: 'challenge', name: 'listener: a 20 KB Host header', expect: { status: 431 }, run: viaListener(get(`${PATH}${TOKEN}`, `${'h'.repeat(20_000)}.example.test`)) },
  { group: 'challenge', name: 'listener: the right token and Host answer 200', expect: { status: 200 }, run: viaListener(get(`${PATH}${TOKEN}`, IDENTIFIER)) },
]
