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
