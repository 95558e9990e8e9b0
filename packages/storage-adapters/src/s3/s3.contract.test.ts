import { fileURLToPath } from 'node:url'
import { services } from '@fastify-acme/harness/vitest'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { storageContract } from '../testing/index.js'
import { createBucket, randomName } from './s3.test-helpers.js'

const s3 = services().s3
const env = {
  S3_ENDPOINT: s3.endpoint,
  S3_REGION: s3.region,
  S3_BUCKET: randomName('s3-contract'),
  S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
  S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
}
Object.assign(process.env, env)
beforeAll(() => createBucket(s3, env.S3_BUCKET))

storageContract({ describe, it, afterAll }, {
  name: 's3',
  module: fileURLToPath(new URL('./s3.test-storage.ts', import.meta.url)),
  execArgv: ['--conditions=source', '--import', 'tsx'],
  env,
  lockPollMs: 250,
  // LastModified and Date have whole seconds: a lock is seen stale up to ~2 s after its TTL
  staleSlackMs: 2000,
})
