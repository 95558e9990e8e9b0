import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createPeerOps, type PeerArgs, type PeerOp, type PeerResult, type StorageFactory } from './peer-ops.js'

/** Another instance sharing the storage under test: a child process, or an in-process stand-in. */
export interface Peer {
  call<K extends PeerOp>(op: K, args: PeerArgs<K>): Promise<PeerResult<K>>
  /** SIGKILL (child processes only); resolves once the process is gone */
  kill (): Promise<void>
  /** false once the process has exited */
  alive (): boolean
  close (): Promise<void>
}

export interface ChildPeerOptions {
  module: string
  exportName: string
  execArgv: string[]
  env: Record<string, string>
}

const here = import.meta.url
/** The worker next to this file: worker.ts when the suite runs from source, worker.js from dist. */
export const workerPath = fileURLToPath(new URL(here.endsWith('.ts') ? './worker.ts' : './worker.js', here))
export const sourceMode = here.endsWith('.ts')

type Reply = { id: number, ok: true, result: unknown } | { id: number, ok: false, error: { message: string, code?: string, stack?: string } }

export async function startChildPeer (opts: ChildPeerOptions): Promise<Peer> {
  const child = fork(workerPath, [opts.module, opts.exportName], {
    execArgv: opts.execArgv,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, op: string }>()
  let nextId = 1
  let gone: Error | undefined

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('storage contract worker did not start within 30 s')) }, 30_000)
    child.once('message', (msg: { ready: boolean, error?: string }) => {
      clearTimeout(timer)
      if (msg.ready) resolve()
      else reject(new Error(`storage contract worker failed to start: ${msg.error}`))
    })
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`storage contract worker exited at start (${code ?? signal})`)) })
  })

  child.on('message', (msg: Reply) => {
    const entry = pending.get(msg.id)
    if (!entry) return
    pending.delete(msg.id)
    if (msg.ok) return entry.resolve(msg.result)
    const err = Object.assign(new Error(`peer ${entry.op}: ${msg.error.message}`), { code: msg.error.code })
    err.stack = `${err.message}\n--- in the worker ---\n${msg.error.stack ?? ''}`
    entry.reject(err)
  })
  child.once('exit', (code, signal) => {
    gone = new Error(`storage contract worker ${child.pid} exited (${code ?? signal})`)
    for (const entry of pending.values()) entry.reject(gone)
    pending.clear()
  })

  const call: Peer['call'] = (op, args) => {
    if (gone) return Promise.reject(gone)
    return new Promise((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, op })
      child.send({ id, op, args })
    })
  }
  return {
    call,
    kill: () => killChild(child, exited),
    alive: () => !gone,
    async close () {
      if (gone) return
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await Promise.race([call('close', undefined as never).catch(() => {}), exited])
      await exited
      clearTimeout(timer)
    },
  }
}

async function killChild (child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await exited
}

export function inProcessPeer (factory: StorageFactory): Peer {
  const ops = createPeerOps(factory)
  return {
    call: (op, args) => (ops[op] as (a: typeof args) => Promise<never>)(args),
    kill: () => Promise.reject(new Error('an in-process peer cannot be killed')),
    alive: () => true,
    close: async () => { await ops.close() },
  }
}
