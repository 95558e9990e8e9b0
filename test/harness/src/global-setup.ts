import type { TestProject } from 'vitest/node'
import { startChalltestsrv, startPebble } from './pebble.js'
import { startRedis } from './redis.js'
import { startS3Server } from './s3-server.js'
import type { HarnessServices } from './services.js'

/*
 * Vitest global setup: starts one of each real service for the whole run and hands their
 * coordinates to every test through provide/inject. Tests that need a special Pebble
 * (short validity, EAB, faults) start their own with startPebble() against the same DNS.
 */
export default async function setup (project: TestProject) {
  const started = Date.now()
  const [challtestsrv, redis, s3] = await Promise.all([startChalltestsrv(), startRedis({ appendonly: true }), startS3Server()])
  const pebble = await startPebble({ dnsServer: challtestsrv.dnsServer })
  const services: HarnessServices = {
    challtestsrv: { dnsServer: challtestsrv.dnsServer, managementUrl: challtestsrv.managementUrl },
    pebble: {
      directoryUrl: pebble.directoryUrl,
      managementUrl: pebble.managementUrl,
      caBundle: pebble.caBundle,
      tls: { cert: pebble.tls.cert, key: pebble.tls.key },
      httpPort: pebble.httpPort,
      tlsPort: pebble.tlsPort,
    },
    redis: { url: redis.url },
    s3: { ...s3.clientConfig() },
  }
  project.provide('services', services)
  console.log(`harness: pebble, challtestsrv, redis and s3 up in ${Date.now() - started} ms`)

  return async () => {
    await Promise.all([pebble.stop(), challtestsrv.stop(), redis.stop(), s3.close()])
  }
}
