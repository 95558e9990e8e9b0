import { challtestsrvClient, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import http from 'node:http'
import type { Http01Responder } from '../src/challenges/http-01.js'

/** Serves HTTP-01 for `responder` on a fresh loopback address at the shared Pebble's HTTP port. */
export async function serveHttp01 (responder: Http01Responder): Promise<{ address: string, close: () => Promise<void> }> {
  const address = uniqueLoopbackAddress()
  const server = http.createServer((req, res) => {
    const token = req.url?.replace('/.well-known/acme-challenge/', '') ?? ''
    responder.respond(req.headers.host, token).then(
      (body) => res.writeHead(body ? 200 : 404).end(body ?? ''),
      () => res.writeHead(400).end()
    )
  })
  await new Promise<void>((resolve) => server.listen(services().pebble.httpPort, address, resolve))
  return { address, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

let counter = 0

/** A fresh name under example.test that Pebble resolves to `address`. */
export async function pointName (address: string, label = 'n'): Promise<string> {
  counter += 1
  const name = `${label}${counter}-${process.pid}-${Date.now().toString(36)}.example.test`
  const { challtestsrv } = services()
  await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(name, [address])
  return name
}
