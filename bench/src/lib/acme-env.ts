import { challtestsrvClient, stablePort, startChalltestsrv, startPebble, type Challtestsrv } from '@fastify-acme/harness'
import acme from 'acme-client'
import { writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** One Pebble (no-sleep) that one run of one peer gets its certificates from, with challtestsrv as its DNS. */
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
  /**
   * After a failed run: null when Pebble still creates an account within 5 s; otherwise why
   * not, with its goroutines (SIGQUIT) saved to a file in the system's temp directory. Pebble 2.4
   * can deadlock under many concurrent orders, and then answers nothing that touches its store:
   * the run failed because of the CA.
   */
  wedged (): Promise<string | null>
  /** stops this Pebble */
  stop (): Promise<void>
}

/** challtestsrv for the whole bench, and a fresh Pebble for each run (no run inherits another's CA state). */
export interface AcmeLab {
  freshCa (): Promise<AcmeEnv>
  stop (): Promise<void>
}

export async function startAcmeLab (workDir: string): Promise<AcmeLab> {
  const challtestsrv: Challtestsrv = await startChalltestsrv()
  const dns = challtestsrvClient(challtestsrv.managementUrl, challtestsrv.dnsServer)
  const [httpPort, tlsPort] = [await stablePort(), await stablePort()]
  let count = 0
  return {
    async freshCa () {
      const n = count++
      const pebble = await startPebble({ dnsServer: challtestsrv.dnsServer, httpPort, tlsPort })
      const caBundleFile = path.join(workDir, `pebble-ca-${n}.pem`)
      writeFileSync(caBundleFile, pebble.caBundle)
      return {
        directoryUrl: pebble.directoryUrl,
        caBundleFile,
        caBundle: pebble.caBundle,
        issuedRoot: await pebble.rootCertificate(),
        httpPort,
        tlsPort,
        email: 'bench@example.test',
        async point (names, address) {
          for (const name of names) await dns.addA(name, [address])
        },
        async wedged () {
          const answered = await Promise.race([
            newAccount(pebble.directoryUrl, pebble.caBundle).then(() => true, () => true),
            sleep(5000).then(() => false),
          ])
          if (answered) return null
          pebble.service.kill('SIGQUIT')
          await sleep(500)
          // outside the scratch directory, which the bench deletes at the end
          const file = path.join(tmpdir(), `fastify-acme-bench-pebble-${Date.now()}.txt`)
          writeFileSync(file, pebble.service.output())
          return `Pebble did not answer a newAccount within 5 s (deadlocked); its goroutines: ${file}`
        },
        stop: () => pebble.stop(),
      }
    },
    stop: () => challtestsrv.stop(),
  }
}

async function newAccount (directoryUrl: string, caBundle: string): Promise<void> {
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: caBundle })
  const client = new acme.Client({ directoryUrl, accountKey: await acme.crypto.createPrivateEcdsaKey() })
  await client.createAccount({ termsOfServiceAgreed: true })
}
