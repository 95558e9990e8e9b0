import { requireCommands } from '@fastify-acme/harness'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { spawnBinary } from '../lib/proc.js'
import type { IssuancePeer } from './types.js'

/** Debian's lego: `run` with its own HTTP-01 server, EC P-256 key, a fresh --path; done when it exits. */
export const lego: IssuancePeer = {
  key: 'lego',
  measures: 'spawn to exit with the certificate written',
  async issue (job) {
    requireCommands([{ command: 'lego', debianPackage: 'lego' }])
    const store = path.join(job.dir, 'lego')
    const child = spawnBinary('lego', [
      '--server', job.env.directoryUrl,
      '--email', job.env.email,
      '--accept-tos',
      ...job.names.flatMap((name) => ['--domains', name]),
      '--http', '--http.port', `${job.address}:${job.env.httpPort}`,
      '--key-type', 'ec256',
      '--path', store,
      'run',
    ], { env: { LEGO_CA_CERTIFICATES: job.env.caBundleFile } })
    const code = await child.exit(120_000)
    const ms = performance.timeOrigin + performance.now() - child.spawnedAt
    const certificate = path.join(store, 'certificates', `${job.names[0]}.crt`)
    if (code !== 0 || !existsSync(certificate)) throw new Error(`lego failed (${code}):\n${child.stderr.slice(-2000)}`)
    return ms
  },
}
