import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { challtestsrvClient, getText, uniqueLoopbackAddress } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import { randomBytes } from 'node:crypto'
import https from 'node:https'
import type { TLSSocket } from 'node:tls'
import { afterAll, describe, expect, it } from 'vitest'
import { buildApp } from './app.js'

describe('examples/s3', () => {
  const { pebble, challtestsrv, s3 } = services()
  const apps: Array<Awaited<ReturnType<typeof buildApp>>> = []
  afterAll(async () => { await Promise.all(apps.map((a) => a.close())) })

  it('keeps the certificate in the bucket; a second instance serves it from there without ordering', async () => {
    const bucket = `example-s3-${randomBytes(4).toString('hex')}`
    const client = new S3Client(s3)
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
    const [addressA, addressB] = [uniqueLoopbackAddress(), uniqueLoopbackAddress()]
    const domain = `s3-${process.pid}.example.test`
    await challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer).addA(domain, [addressA])
    const start = async (address: string) => {
      const app = await buildApp({
        domains: [domain],
        s3: { ...s3, bucket, prefix: 'acme/prod' },
        acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundle, termsOfServiceAgreed: true, env: false, challenges: { http01: { port: pebble.httpPort, host: address } } },
      })
      apps.push(app)
      const events: string[] = []
      for (const e of ['obtaining', 'obtained', 'updated'] as const) app.acme.on(e, () => events.push(e))
      return { app, events }
    }

    const a = await start(addressA)
    const obtained = new Promise((resolve) => a.app.acme.once('obtained', resolve))
    await a.app.listen({ port: 0, host: addressA })
    await obtained
    const keys = (await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'acme/prod/' }))).Contents!.map((o) => o.Key)
    expect(keys).toContain(`acme/prod/certificates/${domain}/bundle.json`)
    expect(keys.some((k) => k!.startsWith('acme/prod/accounts/'))).toBe(true)

    const b = await start(addressB)
    await b.app.listen({ port: 0, host: addressB })
    await b.app.acme.manage([domain])
    expect(b.events).toEqual(['updated']) // loaded from the bucket: no order

    const root = await getText(`${pebble.managementUrl}/roots/0`, pebble.caBundle)
    const served = await Promise.all([a, b].map(({ app }) => {
      const { address, port } = app.server.address() as { address: string, port: number }
      return get(address, port, domain, root)
    }))
    expect(served.map((s) => s.status)).toEqual([200, 200])
    expect(served[0]!.serial).toBe(served[1]!.serial)
    client.destroy()
  })
})

function get (host: string, port: number, servername: string, ca: string): Promise<{ status: number, serial: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host, port, servername, ca, headers: { host: servername }, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial: (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber ?? '' }))
    }).on('error', reject)
  })
}
