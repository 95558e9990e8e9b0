import { spawnApp } from '../lib/proc.js'
import type { IssuancePeer } from './types.js'

/** acme-client 5 auto(): apps/acme-client-auto.mjs; done when it holds the certificate. */
export const acmeClientAuto: IssuancePeer = {
  key: 'acme-client-auto',
  measures: 'spawn to the certificate in hand',
  async issue (job) {
    if (job.names.length !== 1) throw new Error('the acme-client peer gets one name')
    const child = spawnApp('acme-client-auto.mjs', {
      config: {
        name: job.names[0],
        directoryUrl: job.env.directoryUrl,
        caBundleFile: job.env.caBundleFile,
        email: job.env.email,
        host: job.address,
        httpPort: job.env.httpPort,
      },
    })
    try {
      const done = await child.waitFor('certificate', 120_000)
      return done.receivedAt - child.spawnedAt
    } finally {
      await child.stop()
    }
  },
}
