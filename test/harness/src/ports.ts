import { readFileSync } from 'node:fs'
import net from 'node:net'

/** A TCP port that was free a moment ago on `host`. */
export function freePort (host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/**
 * A port below the kernel's ephemeral range that is free on every address, for ports that many
 * processes bind on different loopback addresses for a long time (the challenge ports Pebble
 * dials). A port from the ephemeral range can later be taken as the source port of some
 * outgoing connection, and then binding it fails with EADDRINUSE.
 */
export async function stablePort (): Promise<number> {
  let low = 32768
  try { low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low } catch {}
  const from = Math.max(1024, Math.min(10_000, low - 2000))
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from))
    if (await canListen(port)) return port
  }
  return freePort()
}

function canListen (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, () => server.close(() => resolve(true)))
  })
}

let counter = 0

/**
 * A loopback address no other test process uses, e.g. 127.13.7.2. Linux answers the whole
 * 127.0.0.0/8 on lo, so these bind without setup. Unique per process (pid) and per call.
 */
export function uniqueLoopbackAddress (): string {
  counter += 1
  if (counter > 250) counter = 1
  const pid = process.pid % 65536
  return `127.${((pid >> 8) % 254) + 1}.${pid & 255}.${counter + 1}`
}
