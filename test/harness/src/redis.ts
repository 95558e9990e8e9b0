import { mkdtempSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'
import { startService, type Service } from './service.js'
import { requireCommands } from './system.js'

export interface RedisOptions {
  /** AOF persistence with fsync always, so data and locks survive kill -9 (default false, like Debian) */
  appendonly?: boolean
  /** extra redis-server arguments, e.g. ['--maxmemory-policy', 'allkeys-lru'] */
  args?: string[]
}

/** A real redis-server in a temp dir on a free port. */
export interface RedisServer {
  url: string
  host: string
  port: number
  dir: string
  service: Service
  /** signal redis-server itself (SIGKILL to simulate a crash) and wait until it is gone */
  kill (signal?: NodeJS.Signals): Promise<void>
  /** start it again on the same port and dir, with the same options */
  restart (): Promise<void>
  stop (): Promise<void>
}

function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.setTimeout(1000)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => { socket.destroy(); resolve(d.toString().startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
  })
}

export async function startRedis (opts: RedisOptions = {}): Promise<RedisServer> {
  requireCommands([{ command: 'redis-server', debianPackage: 'redis-server' }])
  const dir = mkdtempSync(path.join(tmpdir(), 'harness-redis-'))
  const port = await freePort()
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no',
    '--appendonly', opts.appendonly ? 'yes' : 'no', '--appendfsync', 'always', '--logfile', '',
    ...(opts.args ?? []),
  ]
  const launch = () => startService('redis-server', args, { ready: () => ping(port) })
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    dir,
    service: await launch(),
    async kill (signal = 'SIGKILL') {
      server.service.kill(signal)
      await server.service.exited
    },
    async restart () {
      await server.service.stop()
      server.service = await launch()
    },
    stop: () => server.service.stop(),
  }
  return server
}
