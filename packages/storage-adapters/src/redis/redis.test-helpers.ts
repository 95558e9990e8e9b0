import { randomBytes } from 'node:crypto'
import { createClient } from 'redis'
import { onTestFinished } from 'vitest'
import { redisStorage, type RedisStorage, type RedisStorageOptions } from './index.js'

export function randomNamespace (): string {
  return `t-${randomBytes(6).toString('hex')}`
}

/** A storage on `url` in a fresh namespace, closed after the test; warnings are collected, not printed. */
export function storageOn (url: string, opts: RedisStorageOptions = {}): RedisStorage & { warnings: string[] } {
  const warnings: string[] = []
  const storage = redisStorage({ url, namespace: randomNamespace(), logger: { warn: (m) => warnings.push(m) }, ...opts })
  onTestFinished(() => storage.close())
  return Object.assign(storage, { warnings })
}

/** A plain node-redis client for looking at what the adapter wrote, closed after the test. */
export async function rawClient (url: string) {
  const client = createClient({ url })
  client.on('error', () => {})
  await client.connect()
  onTestFinished(async () => { if (client.isOpen) client.destroy() })
  return client
}

/** Redis Cluster's key slot: CRC16/XMODEM of the hash tag (or the whole key) mod 16384. */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open >= 0) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  let crc = 0
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}

export async function waitFor (check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const text = (bytes: Uint8Array | null) => bytes === null ? null : Buffer.from(bytes).toString('utf8')
