import type { Child } from '../lib/proc.js'
import { firstResponse } from '../lib/tls-probe.js'
import type { IssuanceJob } from './types.js'

/** a run that has not served every name by then failed: 60 s for one name, 120 s for many (Caddy needs ~91 s for 100) */
const DEADLINE_MS = { one: 60_000, many: 120_000 }

/**
 * Ms from the server's spawn until every name answered a valid HTTPS GET (chain verified against
 * Pebble's root, name checked). Each name retries on its own, backing off from 10 ms to 250 ms
 * so that a hundred names do not flood a server that is still waiting for certificates.
 */
export async function untilAllServed (server: Child, job: IssuanceJob): Promise<number> {
  const deadline = server.spawnedAt + (job.names.length > 1 ? DEADLINE_MS.many : DEADLINE_MS.one)
  const exited = server.exited.then((code) => { throw new Error(`server exited (${code}) before serving:\n${server.stderr.slice(-2000)}`) })
  const served = Promise.all(job.names.map((servername) => firstResponse(
    { host: job.address, port: job.env.tlsPort, servername, ca: job.env.issuedRoot },
    { retryMs: 10, maxRetryMs: job.names.length > 1 ? 250 : 10, deadline }
  )))
  try {
    const times = await Promise.race([served, exited])
    return Math.max(...times) - server.spawnedAt
  } catch (err) {
    const lines = server.stderr.split('\n')
    const errorLines = lines.filter((l) => l.includes('"level":"error"'))
    const errors = (errorLines.length > 0 ? errorLines : lines.filter((l) => /error|fail/i.test(l))).slice(-5).join('\n')
    throw new Error(`${(err as Error).message}\nlast errors it logged:\n${errors}`)
  }
}
