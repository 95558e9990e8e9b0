import { redisStorage } from './index.js'

/**
 * The contract suite's factory: one namespace per call on the Redis at REDIS_URL. It resolves
 * once the client is connected (checkServer() needs a round trip), like an app that checks its
 * storage at startup, so the suite's timings measure operations, not loading node-redis.
 */
export async function createStorage (namespace: string) {
  const url = process.env.REDIS_URL
  if (!url) throw new Error('REDIS_URL is not set')
  const storage = redisStorage({ url, namespace, logger: { warn () {} } })
  await storage.checkServer()
  return storage
}
