// Load generator: `concurrency` loops of new TLS connections (tls.connect, full handshake,
// destroy), each to a name picked uniformly at random. Verifies the chain against `ca` and the
// name (Node's checkServerIdentity), unless `ca` is absent.
// With `sweep: [from, to]` it connects once to each of benchName(from..to-1) in order instead, then stops.
// With `rate` (handshakes/s) it is an open loop instead: a new connection every 1/rate s, whatever
// the ones in flight are doing, so a stalled server shows in the latencies (no coordinated omission).
// BENCH_CONFIG = {"host","port","names":[..]|"count","concurrency"|"rate","startAt","warmupMs","durationMs","ca"?,"record"?,"sweep"?}
// Prints one JSON line: {"completed","failures","errors","latencies"[,"samples"]} for the measured window;
// failures count from startAt on (warm-up included), handshakes only inside the window.
import tls from 'node:tls'
import { benchName } from './lib/names.mjs'

const config = JSON.parse(process.env.BENCH_CONFIG)
let swept = config.sweep?.[0]
const pick = config.sweep
  ? () => benchName(swept++)
  : config.names
    ? () => config.names[Math.floor(Math.random() * config.names.length)]
    : () => benchName(Math.floor(Math.random() * config.count))
const now = () => performance.timeOrigin + performance.now()
// one client context for every connection: building one per connection would cost the client more than the handshake
const secureContext = tls.createSecureContext(config.ca ? { ca: config.ca } : {})
const windowStart = config.startAt + config.warmupMs
const windowEnd = windowStart + config.durationMs
const latencies = []
const samples = []
const errors = {}
let completed = 0
let failures = 0

function handshake () {
  return new Promise((resolve) => {
    const servername = pick()
    const started = now()
    const socket = tls.connect({
      host: config.host,
      port: config.port,
      servername,
      ALPNProtocols: ['http/1.1'],
      secureContext,
      rejectUnauthorized: Boolean(config.ca),
    })
    const done = (error) => {
      const ended = now()
      socket.destroy()
      if (error) {
        failures++
        errors[error.code ?? error.message] = (errors[error.code ?? error.message] ?? 0) + 1
      } else if (ended >= windowStart && ended < windowEnd) {
        completed++
        latencies.push(ended - started)
        if (config.record) samples.push([Math.round(ended * 10) / 10, Math.round((ended - started) * 1000) / 1000])
      }
      resolve()
    }
    socket.setTimeout(10_000, () => done(new Error('timeout')))
    socket.once('secureConnect', () => done())
    socket.once('error', done)
  })
}

const more = config.sweep ? () => swept < config.sweep[1] : () => now() < windowEnd

async function loop () {
  while (more()) await handshake()
}

async function openLoop () {
  const inflight = new Set()
  for (let next = config.startAt; next < windowEnd; next += 1000 / config.rate) {
    const wait = next - now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const one = handshake().then(() => inflight.delete(one))
    inflight.add(one)
  }
  await Promise.all(inflight)
}

await new Promise((resolve) => setTimeout(resolve, Math.max(0, config.startAt - now())))
if (config.rate) await openLoop()
else await Promise.all(Array.from({ length: config.concurrency }, loop))
process.stdout.write(JSON.stringify({ completed, failures, errors, latencies, ...(config.record ? { samples } : {}) }) + '\n')
