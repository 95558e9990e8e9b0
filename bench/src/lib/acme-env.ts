import { challtestsrvClient, stablePort, startChalltestsrv, startPebble, type Challtestsrv, type Pebble } from '@fastify-acme/harness'
import { writeFileSync } from 'node:fs'
import path from 'node:path'

/** The one Pebble (no-sleep) every peer gets certificates from, with challtestsrv as its DNS. */
export interface AcmeEnv {
  directoryUrl: string
  /** Pebble's own HTTPS certificate's CA (trust for the ACME endpoint), as a file */
  caBundleFile: string
  caBundle: string
  /** the root Pebble signs issued certificates with: what a client verifies served chains against */
  issuedRoot: string
  /** where Pebble's VA connects for HTTP-01 and TLS-ALPN-01: every peer serves HTTP and HTTPS there */
  httpPort: number
  tlsPort: number
  email: string
  /** DNS for Pebble's VA: these names resolve to `address` */
  point (names: string[], address: string): Promise<void>
  stop (): Promise<void>
}

export async function startAcmeEnv (workDir: string): Promise<AcmeEnv> {
  let challtestsrv: Challtestsrv | undefined
  let pebble: Pebble | undefined
  try {
    challtestsrv = await startChalltestsrv()
    const [httpPort, tlsPort] = [await stablePort(), await stablePort()]
    pebble = await startPebble({ dnsServer: challtestsrv.dnsServer, httpPort, tlsPort })
  } catch (err) {
    await challtestsrv?.stop()
    throw err
  }
  const caBundleFile = path.join(workDir, 'pebble-ca.pem')
  writeFileSync(caBundleFile, pebble.caBundle)
  const dns = challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer)
  const [p, c] = [pebble, challtestsrv]
  return {
    directoryUrl: p.directoryUrl,
    caBundleFile,
    caBundle: p.caBundle,
    issuedRoot: await p.rootCertificate(),
    httpPort: p.httpPort,
    tlsPort: p.tlsPort,
    email: 'bench@example.test',
    async point (names, address) {
      for (const name of names) await dns.addA(name, [address])
    },
    async stop () {
      await p.stop()
      await c.stop()
    },
  }
}
