import { fileURLToPath } from 'node:url'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, describe, it } from 'vitest'
import { storageContract } from '../testing/index.js'

process.env.REDIS_URL = services().redis.url

storageContract({ describe, it, afterAll }, {
  name: 'redis',
  module: fileURLToPath(new URL('./redis.test-storage.ts', import.meta.url)),
  execArgv: ['--conditions=source', '--import', 'tsx'],
  env: { REDIS_URL: services().redis.url },
  lockPollMs: 250,
})
