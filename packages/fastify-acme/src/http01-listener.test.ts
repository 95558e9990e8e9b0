import { memoryStorage } from '@fastify-acme/core'
import { freePort, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import Fastify from 'fastify'
import http from 'node:http'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import fastifyAcme from './index.js'

function get (host: string, port: number, path: string, hostHeader: string): Promise<{ status: number, location?: string, body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host, port, path, headers: { host: hostHeader }, agent: false }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }))
    }).on('error', reject)
  })
}

describe('the port-80 listener', () => {
  const acme = { directoryUrl: services().pebble.directoryUrl, caBundle: services().pebble.caBundle, env: false as const }

  it('answers tokens and 308-redirects everything else to https, then closes with the app', async () => {
    const host = uniqueLoopbackAddress()
    const port = await freePort(host)
    const app = Fastify()
    await app.register(fastifyAcme, { ...acme, storage: memoryStorage(), challenges: { http01: { port, host } } })
    await app.ready()
    app.acme.add([['www.example.test']])
    const token = 't'.repeat(43)
    await app.acme.http01.present({ identifier: { type: 'dns', value: 'www.example.test' }, wildcard: false, type: 'http-01', token, keyAuthorization: `${token}.k` })
    expect(await get(host, port, `/.well-known/acme-challenge/${token}`, 'www.example.test')).toMatchObject({ status: 200, body: `${token}.k` })
    expect(await get(host, port, `/.well-known/acme-challenge/${token}`, 'other.example.test')).toMatchObject({ status: 404 })
    expect(await get(host, port, '/.well-known/acme-challenge/%2e%2e%2f', 'www.example.test')).toMatchObject({ status: 400 })
    expect(await get(host, port, '/shop?item=1', 'www.example.test:80')).toMatchObject({ status: 308, location: 'https://www.example.test/shop?item=1' })
    // only names served here are redirected: the Host header is the client's to choose
    expect(await get(host, port, '/login', 'evil.test')).toMatchObject({ status: 404 })
    expect(await get(host, port, '/', 'bad host\\x')).toMatchObject({ status: 400 })
    await app.listen({ port: 0, host })
    const appPort = (app.server.address() as { port: number }).port
    expect(await get(host, port, '/shop', 'www.example.test')).toMatchObject({ status: 308, location: `https://www.example.test:${appPort}/shop` })
    await app.close()
    await expect(get(host, port, '/', 'www.example.test')).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('parses the request target: absolute-form, query strings on tokens, IPv6 hosts; a malformed Host gets 400', async () => {
    const host = uniqueLoopbackAddress()
    const port = await freePort(host)
    const app = Fastify()
    await app.register(fastifyAcme, { ...acme, storage: memoryStorage(), challenges: { http01: { port, host } } })
    await app.ready()
    app.acme.add([['www.example.test'], ['::1'], ['2001:db8::1'], ['192.0.2.1']])
    try {
      const token = 'q'.repeat(43)
      await app.acme.http01.present({ identifier: { type: 'dns', value: 'www.example.test' }, wildcard: false, type: 'http-01', token, keyAuthorization: `${token}.k` })
      const challenge = `/.well-known/acme-challenge/${token}`
      // the token is matched on the path, as the app's own route does (Fastify strips the query)
      expect(await get(host, port, `${challenge}?x=1`, 'www.example.test')).toMatchObject({ status: 200, body: `${token}.k` })
      // absolute-form (proxies): its host wins over Host (RFC 9112 §3.2.2), for tokens and redirects
      expect(await get(host, port, `http://www.example.test${challenge}`, 'other.example.test')).toMatchObject({ status: 200, body: `${token}.k` })
      expect(await get(host, port, 'http://www.example.test/x?y=1', 'www.example.test')).toMatchObject({ status: 308, location: 'https://www.example.test/x?y=1' })
      expect(await get(host, port, 'http://www.example.test:8080/x', 'evil.test')).toMatchObject({ status: 308, location: 'https://www.example.test/x' })
      // a path starting with '//' stays a path
      expect(await get(host, port, '//evil.test/x', 'www.example.test')).toMatchObject({ status: 308, location: 'https://www.example.test//evil.test/x' })
      for (const bad of ['www.example.test:8080:99', 'www.example.test:99999', '[not-ipv6]:80', '[::1', '*.example.test', 'a@b.test', 'a b.test']) {
        expect(await get(host, port, '/a', bad), bad).toMatchObject({ status: 400 })
      }
      expect(await get(host, port, 'ftp://www.example.test/a', 'www.example.test')).toMatchObject({ status: 400 })
      expect(await get(host, port, '/a?b', '[::1]:8080')).toMatchObject({ status: 308, location: 'https://[::1]/a?b' })
      expect(await get(host, port, '/a', '[2001:DB8::1]')).toMatchObject({ status: 308, location: 'https://[2001:db8::1]/a' })
      expect(await get(host, port, '/a', '192.0.2.1:80')).toMatchObject({ status: 308, location: 'https://192.0.2.1/a' })
    } finally {
      await app.close()
    }
  })

  it('fails ready() with a coded error naming the port when it is taken', async () => {
    const host = uniqueLoopbackAddress()
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, host, resolve))
    const { port } = blocker.address() as net.AddressInfo
    const app = Fastify()
    try {
      await app.register(fastifyAcme, { ...acme, storage: memoryStorage(), challenges: { http01: { port, host } } })
      const err = await app.ready().then(() => null, (e: unknown) => e)
      expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
      expect((err as Error).message).toContain(`${host}:${port}`)
      expect((err as Error).message).toContain('EADDRINUSE')
    } finally {
      await app.close().catch(() => {})
      blocker.close()
    }
  })

  it('is not opened when only the local CA issues (no challenge to answer)', async () => {
    const host = uniqueLoopbackAddress()
    const port = await freePort(host)
    const app = Fastify()
    await app.register(fastifyAcme, { env: false, directoryUrl: 'local', storage: memoryStorage(), challenges: { http01: { port, host } } })
    await app.ready()
    await expect(get(host, port, '/', 'www.example.test')).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await app.close()
  })

  it('refuses, at registration, a port that is not a number instead of binding a UNIX socket named after it', async () => {
    for (const port of ['eighty', 70_000, -1, 1.5]) {
      const app = Fastify()
      try {
        const err = await app.register(fastifyAcme, { ...acme, storage: memoryStorage(), challenges: { http01: { port: port as number, host: '127.0.0.1' } } })
          .then(() => null, (e: unknown) => e)
        expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION', message: expect.stringContaining('challenges.http01.port') })
      } finally {
        await app.close().catch(() => {})
      }
    }
  })
})
