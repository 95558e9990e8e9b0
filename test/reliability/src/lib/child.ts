import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AppConfig, AppMessage } from '../app/config.js'

const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const APP_SCRIPT = path.join(PACKAGE_DIR, 'src/app/app.ts')
const running = new Set<AppProcess>()

/** An event as received by the parent. */
export type AppEvent = AppMessage & { receivedAt: number }

/**
 * One app process (src/app/app.ts) with workspace sources through tsx: events in, commands out.
 * Its stdout and stderr go to `<logFile>.out`, so they are scanned with the pino log.
 */
export class AppProcess {
  readonly events: AppEvent[] = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  port = 0
  readonly #child: ChildProcess
  readonly #waiters = new Set<() => void>()
  #nextId = 1

  constructor (readonly config: AppConfig, opts: { nodeFlags?: string[], env?: Record<string, string> } = {}) {
    this.#child = spawn(process.execPath, [...(opts.nodeFlags ?? []), '--conditions=source', '--import', 'tsx', APP_SCRIPT], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, ...opts.env, RELIABILITY_APP: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    const out = createWriteStream(`${config.logFile}.out`)
    this.#child.stdout!.pipe(out, { end: false })
    this.#child.stderr!.pipe(out, { end: false })
    this.#child.on('message', (message: AppMessage) => {
      this.events.push({ ...message, receivedAt: Date.now() })
      if (message.event === 'listening') this.port = Number(message.port)
      this.#wake()
    })
    running.add(this)
    this.exited = new Promise((resolve) => this.#child.on('exit', (code, signal) => {
      running.delete(this)
      out.end()
      this.#wake()
      resolve({ code, signal })
    }))
  }

  get id (): string { return this.config.id }
  get pid (): number { return this.#child.pid ?? 0 }
  get alive (): boolean { return this.#child.exitCode === null && this.#child.signalCode === null }

  /** Resolves once `predicate` holds over the events so far; rejects on exit or after `timeoutMs`. */
  until<T> (what: string, predicate: (events: AppEvent[]) => T | undefined | false, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${this.id}: no ${what} after ${timeoutMs} ms`)), timeoutMs)
      const check = () => {
        const found = predicate(this.events)
        if (found) return done(undefined, found)
        const fatal = this.events.find((e) => e.event === 'fatal')
        if (fatal || !this.alive) done(new Error(`${this.id} exited before ${what}: ${String(fatal?.error ?? this.#child.exitCode ?? this.#child.signalCode)}`))
      }
      const done = (err?: Error, value?: T) => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        if (err) reject(err)
        else resolve(value!)
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** The first event named `name` (already received or next) that matches. */
  waitFor (name: string, match: (e: AppEvent) => boolean = () => true, timeoutMs?: number): Promise<AppEvent> {
    return this.until(name, (events) => events.find((e) => e.event === name && match(e)), timeoutMs)
  }

  /** Primary names this process serves (an 'updated' event for each). */
  served (): Set<string> {
    return new Set(this.events.filter((e) => e.event === 'updated').map((e) => (e.names as string[])[0]!))
  }

  async command (cmd: string, fields: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<AppEvent> {
    const id = this.#nextId++
    this.#child.send({ cmd, id, ...fields })
    const reply = await this.waitFor('reply', (e) => e.id === id, timeoutMs)
    if (reply.error) throw new Error(`${cmd} failed in ${this.id}: ${String(reply.error)}`)
    return reply
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.#child.kill(signal)
  }

  /** A graceful close (the plugin's onClose), SIGKILL if it takes over 15 s. */
  async stop (): Promise<void> {
    if (!this.alive) return
    const timer = setTimeout(() => this.kill('SIGKILL'), 15_000)
    this.command('close', {}, 15_000).catch(() => {})
    await this.exited
    clearTimeout(timer)
  }

  #wake (): void {
    for (const wake of [...this.#waiters]) wake()
  }
}

/** Stops every app process still running. */
export async function stopAllApps (): Promise<void> {
  await Promise.all([...running].map((app) => app.stop()))
}
