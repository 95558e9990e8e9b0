import { requireCommands } from '@fastify-acme/harness'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { spawnBinary } from '../lib/proc.js'
import { untilAllServed } from './serve-probe.js'
import type { IssuanceJob, IssuancePeer } from './types.js'

/** Debian's caddy, one site per name answering "ok", storage and config dirs fresh per run. */
export const caddy: IssuancePeer = {
  key: 'caddy',
  measures: 'spawn to the first valid HTTPS response for every name',
  async issue (job) {
    requireCommands([{ command: 'caddy', debianPackage: 'caddy' }])
    const home = path.join(job.dir, 'caddy-home')
    mkdirSync(home, { recursive: true })
    const file = path.join(job.dir, 'Caddyfile')
    writeFileSync(file, caddyfile(job))
    const server = spawnBinary('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], {
      env: { HOME: home, XDG_DATA_HOME: path.join(home, 'data'), XDG_CONFIG_HOME: path.join(home, 'config') },
    })
    try {
      return await untilAllServed(server, job)
    } finally {
      await server.stop('SIGKILL') // measured already; its graceful shutdown takes 1.5 s per run
    }
  },
}

export function caddyfile (job: IssuanceJob): string {
  const global = [
    '{',
    '\tadmin off',
    `\tacme_ca ${job.env.directoryUrl}`,
    `\tacme_ca_root ${job.env.caBundleFile}`,
    `\temail ${job.env.email}`,
    `\thttp_port ${job.env.httpPort}`,
    `\thttps_port ${job.env.tlsPort}`,
    `\tstorage file_system ${path.join(job.dir, 'caddy-storage')}`,
    '\tskip_install_trust',
    '}',
  ]
  const sites = job.names.map((name) => `${name} {\n\tbind ${job.address}\n\trespond "ok"\n}`)
  return [...global, ...sites].join('\n') + '\n'
}
