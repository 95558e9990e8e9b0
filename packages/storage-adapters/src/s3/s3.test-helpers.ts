import { randomBytes } from 'node:crypto'
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { startS3Server, type S3Server, type S3ServerOptions } from '@fastify-acme/harness'
import { onTestFinished } from 'vitest'
import { s3Storage, type S3Storage, type S3StorageOptions } from './index.js'

export type ServerConfig = ReturnType<S3Server['clientConfig']>

export const randomName = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`

export async function createBucket (config: ServerConfig, bucket: string): Promise<void> {
  const client = new S3Client(config)
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
  } finally {
    client.destroy()
  }
}

/** A storage on `config`'s server in a fresh prefix, closed after the test; warnings are collected. */
export function storageOn (config: ServerConfig, bucket: string, opts: Partial<S3StorageOptions> = {}): S3Storage & { warnings: string[], prefix: string } {
  const warnings: string[] = []
  const prefix = opts.prefix ?? randomName('p')
  const storage = s3Storage({ ...config, bucket, prefix, logger: { warn: (m) => warnings.push(m) }, ...opts })
  onTestFinished(() => storage.close())
  return Object.assign(storage, { warnings, prefix })
}

/** A server of this test's own (for fault injection and request logs) with a bucket, closed after the test. */
export async function ownServer (opts: S3ServerOptions = {}) {
  const server = await startS3Server(opts)
  onTestFinished(() => server.close())
  const bucket = 'own'
  await createBucket(server.clientConfig(), bucket)
  const raw = new S3Client({ ...server.clientConfig(), maxAttempts: 1 })
  onTestFinished(() => raw.destroy())
  return {
    server,
    bucket,
    raw,
    storage: (o: Partial<S3StorageOptions> = {}) => storageOn(server.clientConfig(), bucket, o),
    async read (key: string) {
      const out = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      return { etag: out.ETag!, lastModified: out.LastModified!, text: await out.Body!.transformToString() }
    },
    async write (key: string, body: string) {
      return raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body) }))
    },
    async keys (prefix = '') {
      const out = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
      return (out.Contents ?? []).map((o) => o.Key!)
    },
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const text = (bytes: Uint8Array | null) => bytes === null ? null : Buffer.from(bytes).toString('utf8')
