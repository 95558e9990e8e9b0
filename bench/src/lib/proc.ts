import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** bench/apps: the measured scripts, plain ESM run by plain node on the built packages. */
export const APPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../apps')
let appsDir = APPS

/** Runs the apps from elsewhere from now on (a snapshot of the build, see snapshot.ts). */
export function useAppsDir (dir: string): void {
  appsDir = dir
}

/** A message a measured process sent over IPC (see apps/lib/control.mjs). */
export interface AppEvent {
  event: string
  /** the app's clock, ms since the epoch */
  at: number
  /** the runner's clock when it arrived */
  receivedAt: number
  [field: string]: unknown
}

export interface SpawnOptions {
  /** JSON config, passed as BENCH_CONFIG */
  config?: unknown
  /** arguments after the script */
  args?: string[]
  /** pin to this CPU with taskset */
  cpu?: number
  /** extra node flags, e.g. --expose-gc */
  nodeFlags?: string[]
  env?: Record<string, string>
  cwd?: string
}

const children = new Set<Child>()
const wallNow = () => performance.timeOrigin + performance.now()

/** A child process the runner started; stop() ends it by its pid. */
export class Child {
  readonly spawnedAt: number
  readonly exited: Promise<number | null>
  stdout = ''
  stderr = ''
  readonly #events: AppEvent[] = []
  readonly #waiters = new Set<() => void>()
  #nextId = 1

  constructor (readonly process: ChildProcess) {
    this.spawnedAt = wallNow()
    children.add(this)
    process.stdout?.on('data', (chunk: Buffer) => { this.stdout += chunk.toString() })
    process.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    process.on('message', (message: Omit<AppEvent, 'receivedAt'>) => {
      this.#events.push({ ...message, receivedAt: wallNow() } as AppEvent)
      for (const wake of this.#waiters) wake()
    })
    this.exited = new Promise((resolve) => process.on('exit', (code) => {
      children.delete(this)
      for (const wake of this.#waiters) wake()
      resolve(code)
    }))
  }

  /** Resolves with the first event named `name` (already received or next), rejects on exit or timeout. */
  waitFor (name: string, timeoutMs = 60_000, match: (e: AppEvent) => boolean = () => true): Promise<AppEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${name}: no event after ${timeoutMs} ms\n${this.stderr.slice(-2000)}`)), timeoutMs)
      const check = () => {
        const found = this.#events.find((e) => e.event === name && match(e))
        if (found) return finish(undefined, found)
        if (this.process.exitCode !== null || this.process.signalCode !== null) {
          finish(new Error(`exited (${this.process.exitCode ?? this.process.signalCode}) before ${name}:\n${this.stderr.slice(-2000)}`))
        }
      }
      const finish = (err?: Error, event?: AppEvent) => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        if (err) reject(err)
        else resolve(event!)
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Sends a command (apps/lib/control.mjs) and resolves with its reply. */
  async command (cmd: string, fields: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<AppEvent> {
    const id = this.#nextId++
    this.process.send({ cmd, id, ...fields })
    const reply = await this.waitFor('reply', timeoutMs, (e) => e.id === id)
    if (reply.error) throw new Error(`${cmd} failed in the app: ${String(reply.error)}`)
    return reply
  }

  /** Resolves with the exit code, rejecting after `timeoutMs`. */
  async exit (timeoutMs = 120_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${this.stderr.slice(-2000)}`)), timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** `signal` (SIGTERM), then SIGKILL after 3 s; resolves once it is gone. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    const pid = this.process.pid
    if (pid === undefined) return
    try { process.kill(pid, signal) } catch {}
    const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL') } catch {} }, 3000)
    await this.exited
    clearTimeout(timer)
  }
}

function pinned (cpu: number | undefined, command: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [command, args] : ['taskset', ['-c', String(cpu), command, ...args]]
}

/**
 * Runs bench/apps/<script> with plain node (no tsx, no source conditions) and an IPC channel.
 * With BENCH_CPU_PROF=<dir> in the runner's environment, every one writes a V8 CPU profile
 * under <dir>/<script> (for diagnosis: profiling slows what it measures).
 */
export function spawnApp (script: string, opts: SpawnOptions = {}): Child {
  const env: Record<string, string> = { ...cleanEnv(), ...opts.env }
  if (opts.config !== undefined) env.BENCH_CONFIG = JSON.stringify(opts.config)
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${path.join(process.env.BENCH_CPU_PROF, script)}`] : []
  const [command, args] = pinned(opts.cpu, process.execPath, [...profile, ...(opts.nodeFlags ?? []), path.join(appsDir, script), ...(opts.args ?? [])])
  return new Child(spawn(command, args, { env, cwd: opts.cwd ?? appsDir, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }))
}

/** Runs a peer's binary (caddy, lego). */
export function spawnBinary (command: string, args: string[], opts: SpawnOptions = {}): Child {
  const [cmd, argv] = pinned(opts.cpu, command, args)
  return new Child(spawn(cmd, argv, { env: { ...cleanEnv(), ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] }))
}

/** The runner's environment minus what would change how a measured process runs (tsx, conditions). */
function cleanEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && key !== 'NODE_OPTIONS' && !key.startsWith('ACME_') && !key.startsWith('npm_')) env[key] = value
  }
  return env
}

/** Stops every child still running (on exit, on Ctrl-C). */
export async function stopAll (): Promise<void> {
  await Promise.all([...children].map((child) => child.stop()))
}
