import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'

/** A server process started by the harness. */
export interface Service {
  /** pid of the server itself (not of its watchdog) */
  readonly pid: number
  /** everything it printed so far */
  output (): string
  /** resolves when the server has exited */
  readonly exited: Promise<number | null>
  /** sends a signal to the server itself, e.g. SIGKILL for fault tests */
  kill (signal?: NodeJS.Signals): void
  /** SIGTERM, then SIGKILL after 3 s; resolves once it is gone */
  stop (): Promise<void>
}

/*
 * Each server runs under a tiny shell watchdog that kills it when the process that started it
 * goes away, even by SIGKILL. So a crashed test run never leaves an orphan Pebble or Redis.
 * The watchdog prints the server's pid first so that fault tests can signal the server itself.
 */
const WATCHDOG = [
  'owner=$1; shift',
  '"$@" & child=$!',
  'echo "harness-pid $child"',
  'trap \'kill -TERM $child 2>/dev/null; wait $child; exit\' TERM INT HUP',
  'while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5 & wait $!; done',
  'kill -TERM "$child" 2>/dev/null; wait "$child"',
].join('\n')

export interface StartOptions {
  env?: Record<string, string>
  cwd?: string
  /** resolves when the server is ready; retried until `readyTimeoutMs` */
  ready: () => Promise<boolean>
  readyTimeoutMs?: number
}

export async function startService (command: string, args: string[], opts: StartOptions): Promise<Service> {
  const child: ChildProcess = spawn('sh', ['-c', WATCHDOG, 'watchdog', String(process.pid), command, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let pid = 0
  const gotPid = new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /harness-pid (\d+)/.exec(out)
      if (m && pid === 0) { pid = Number(m[1]); resolve() }
    })
  })
  child.stderr!.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let alive = true
  child.on('exit', () => { alive = false })

  const service: Service = {
    get pid () { return pid },
    output: () => out,
    exited,
    kill (signal = 'SIGTERM') {
      if (pid) try { process.kill(pid, signal) } catch {}
    },
    async stop () {
      if (!alive) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => { service.kill('SIGKILL'); child.kill('SIGKILL') }, 3000)
      await exited
      clearTimeout(timer)
    },
  }

  await Promise.race([gotPid, exited])
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000)
  for (;;) {
    if (!alive) break
    if (await opts.ready().catch(() => false)) return service
    if (Date.now() > deadline) break
    await sleep(20)
  }
  await service.stop()
  throw new Error(`${command} did not become ready:\n${out.slice(-2000)}`)
}
