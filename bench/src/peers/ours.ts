import path from 'node:path'
import { spawnApp } from '../lib/proc.js'
import { untilAllServed } from './serve-probe.js'
import type { IssuancePeer } from './types.js'

/** fastify-acme: apps/ours-issue.mjs, a Fastify app with acmeHttps() and the plugin, fs storage. */
export const ours: IssuancePeer = {
  key: 'ours',
  measures: 'spawn to the first valid HTTPS response for every name',
  async issue (job) {
    const server = spawnApp('ours-issue.mjs', {
      config: {
        names: job.names,
        dir: path.join(job.dir, 'acme-data'),
        directoryUrl: job.env.directoryUrl,
        caBundleFile: job.env.caBundleFile,
        email: job.env.email,
        host: job.address,
        port: job.env.tlsPort,
        httpPort: job.env.httpPort,
      },
    })
    try {
      return await untilAllServed(server, job)
    } finally {
      await server.stop()
    }
  },
}
