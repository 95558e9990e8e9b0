// `pnpm test:reliability`: the SPEC section 7 scenarios at full size, each in real processes against
// real servers, writing bench/results/reliability.json. Flags: --only a,b (cluster, kill, outage,
// faults, ondemand, badinputs) replaces just those figures in the file; the secrets scan always
// runs last over every log of the run.
import { startChalltestsrv, startPebble, startRedis, startS3Server } from '@fastify-acme/harness'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { stopAllApps } from './lib/child.js'
import { removeScratchDirs, type ScenarioEnv, type StorageKind } from './lib/env.js'
import { figure, RESULTS_FILE, table, writeResults, type ReliabilityResult } from './lib/results.js'
import { scanLogs } from './lib/secrets.js'
import { runBadInputs } from './scenarios/bad-inputs.js'
import { runCaFaults } from './scenarios/ca-faults.js'
import { runCluster } from './scenarios/cluster.js'
import { runKillHolder } from './scenarios/kill-holder.js'
import { runOnDemand } from './scenarios/on-demand.js'
import { runRedisOutage } from './scenarios/redis-outage.js'

const STORAGES: StorageKind[] = ['redis', 's3', 'fs']
const SCENARIOS = ['cluster', 'kill', 'outage', 'faults', 'ondemand', 'badinputs'] as const
/** the issuance lock's default lease, and one retry step: a lock poll (<= 750 ms) plus one order on Pebble */
const LOCK_TTL_MS = 30_000
const RETRY_STEP_MS = 2000

const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--'), options: { only: { type: 'string' } } })
const only = new Set(values.only ? values.only.split(',') : SCENARIOS)
const log = (line: string) => process.stdout.write(`${line}\n`)
const results: ReliabilityResult[] = []
const errors: Record<string, string> = {}
const started = Date.now()

async function scenario (name: typeof SCENARIOS[number], work: () => Promise<void>): Promise<void> {
  if (!only.has(name)) return
  const t0 = Date.now()
  log(`${name}...`)
  try {
    await work()
  } catch (err) {
    errors[name] = (err as Error).stack ?? String(err)
    log(`  ${name} failed: ${(err as Error).message}`)
  }
  await stopAllApps()
  log(`  ${name}: ${Math.round((Date.now() - t0) / 1000)} s`)
}

async function main (): Promise<void> {
  const logDir = mkdtempSync(path.join(tmpdir(), 'fastify-acme-reliability-'))
  log(`fastify-acme reliability: logs (debug level) in ${logDir}`)
  const [challtestsrv, redis, s3] = await Promise.all([startChalltestsrv(), startRedis({ appendonly: true }), startS3Server()])
  const pebble = await startPebble({ dnsServer: challtestsrv.dnsServer })
  const env: ScenarioEnv = {
    challtestsrv: { dnsServer: challtestsrv.dnsServer, managementUrl: challtestsrv.managementUrl },
    pebble: { directoryUrl: pebble.directoryUrl, managementUrl: pebble.managementUrl, caBundle: pebble.caBundle, tls: { cert: pebble.tls.cert, key: pebble.tls.key }, httpPort: pebble.httpPort, tlsPort: pebble.tlsPort },
    redis: { url: redis.url },
    s3: s3.clientConfig(),
    logDir,
  }
  try {
    await scenario('cluster', async () => {
      for (const storage of STORAGES) {
        const r = await runCluster(env, { storage, processes: 4, names: 50, timeoutMs: 240_000 })
        const details = { processes: 4, names: 50, accounts: r.accounts, obtainedBy: r.obtainedBy, durationMs: r.durationMs, crashed: r.crashed }
        results.push(figure(`cluster.${storage}.orders`, 'orders', r.orders, 50, '==', details))
        results.push(figure(`cluster.${storage}.serving`, 'name/process pairs', r.serving, r.expectedServing, '==', { inconsistentNames: r.inconsistentNames }))
        log(`  ${storage}: ${r.orders} orders, ${r.serving}/${r.expectedServing} served, ${r.durationMs} ms`)
      }
    })
    await scenario('kill', async () => {
      const runs = []
      for (const storage of STORAGES) {
        const r = await runKillHolder(env, { storage, processes: 3, ttlMs: LOCK_TTL_MS, delayMs: 5000 })
        runs.push(r)
        log(`  ${storage}: recovered ${r.recoveredMs} ms (lock taken ${r.lockTakenAfterMs} ms after the kill, order ${r.orderMs} ms)`)
      }
      const worst = runs.some((r) => r.recoveredMs === null) ? null : Math.max(...runs.map((r) => r.recoveredMs!))
      results.push(figure('kill_holder.recovered', 'ms', worst, LOCK_TTL_MS + RETRY_STEP_MS, '<=', {
        ttlMs: LOCK_TTL_MS, retryStepMs: RETRY_STEP_MS, processes: 3, note: 'the worst of Redis, S3 and fs; SIGKILL to another instance\'s "obtained"', runs,
      }))
    })
    await scenario('outage', async () => {
      const r = await runRedisOutage(env, { processes: 4, names: 20, outageMs: 30_000 })
      const { failedHandshakes, ...details } = r
      results.push(figure('redis_outage.failed_handshakes', 'handshakes', failedHandshakes, 0, '==', { outageMs: 30_000, processes: 4, names: 20, ...details }))
      log(`  ${r.handshakes} handshakes (${r.handshakesDuringOutage} during the outage), ${failedHandshakes} failed; issuance resumed ${r.resumedAfterMs} ms after Redis returned`)
    })
    await scenario('faults', async () => {
      const r = await runCaFaults(env, { names: 20, timeoutMs: 300_000 })
      const details = { names: r.names, requestsPerCertificate: r.requestsPerCertificate, injected: r.injected, badNonces: r.badNonces, durationMs: r.durationMs, crashed: r.crashed }
      results.push(figure('ca_faults.unissued', 'certificates', r.unissued, 0, '==', details))
      results.push(figure('ca_faults.retry_after_violations', 'requests', r.retryAfterViolations, 0, '==', { injected429: r.injected.rateLimited, retryAfterSeconds: 2, arrivalsInsideRetryAfter: r.arrivalsInsideRetryAfter, note: 'a request counts when it reached the CA inside a Retry-After the client had read: signed with a nonce issued > 50 ms after the 429, or arriving > 500 ms after it; arrivalsInsideRetryAfter also counts requests already on their way' }))
      log(`  ${r.names - r.unissued}/${r.names} issued in ${r.durationMs} ms, ${r.retryAfterViolations} Retry-After violations, ${r.requestsPerCertificate} requests per certificate`)
    })
    await scenario('ondemand', async () => {
      const r = await runOnDemand(env, { handshakes: 500 }) // two floods: 1,000 handshakes
      const { deniedOrders, ...details } = r
      results.push(figure('on_demand.denied_orders', 'orders', deniedOrders, 0, '==', details))
      log(`  ${deniedOrders} orders for ${r.handshakes} denied handshakes; RSS ${r.rssBeforeMb} -> ${r.rssAfterMb} -> ${r.rssAfterSecondMb} MB, heap ${r.heapUsedBeforeMb} -> ${r.heapUsedAfterMb} -> ${r.heapUsedAfterSecondMb} MB`)
    })
    await scenario('badinputs', async () => {
      const r = await runBadInputs(env)
      const table = r.results.map((c) => ({ group: c.group, case: c.name, expected: c.expected, outcome: { ...c.outcome, message: c.outcome.message?.slice(0, 200) }, pass: c.pass }))
      results.push(figure('bad_inputs.cases', 'cases', r.cases, 30, '>=', { mismatches: r.mismatches, table }))
      results.push(figure('bad_inputs.crashes', 'cases', r.crashes, 0, '=='))
      results.push(figure('bad_inputs.uncoded_errors', 'cases', r.uncodedErrors, 0, '=='))
      log(`  ${r.cases} cases: ${r.crashes} crashes, ${r.uncodedErrors} uncoded errors, ${r.mismatches} mismatches`)
    })
    const scan = scanLogs(logDir)
    const secrets = figure('secrets_in_logs', 'hits', scan.hits.length, 0, '==', { files: scan.files, bytes: scan.bytes, secretsLookedFor: scan.secrets, hits: scan.hits.slice(0, 20) })
    if (!values.only) results.push(secrets) // a partial run scans only its own logs: printed, not written
    log(`secrets: ${scan.hits.length} hits for ${scan.secrets} secrets in ${scan.files} files (${scan.bytes} bytes)`)
  } finally {
    await stopAllApps()
    await Promise.all([pebble.stop(), challtestsrv.stop(), redis.stop(), s3.close()])
    removeScratchDirs()
  }
  const wallMs = Date.now() - started
  writeResults(results, { wallMs, ...(values.only ? { only: values.only } : {}), ...(Object.keys(errors).length > 0 ? { errors } : {}) }, values.only !== undefined)
  log(`\n${table(results)}\n\nwrote ${RESULTS_FILE} in ${Math.round(wallMs / 1000)} s`)
  if (Object.keys(errors).length > 0) process.exitCode = 1
}

main().then(() => process.exit(), (err: Error) => {
  log(err.stack ?? String(err))
  stopAllApps().finally(() => process.exit(1))
})
