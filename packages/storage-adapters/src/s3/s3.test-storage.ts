import { s3Storage } from './index.js'

/** The contract suite's factory: one prefix per namespace in S3_BUCKET on the server at S3_ENDPOINT. */
export function createStorage (namespace: string) {
  const { S3_ENDPOINT: endpoint, S3_BUCKET: bucket, S3_REGION: region = 'us-east-1' } = process.env
  if (!endpoint || !bucket) throw new Error('S3_ENDPOINT and S3_BUCKET must be set')
  return s3Storage({
    endpoint,
    region,
    bucket,
    prefix: namespace,
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.S3_ACCESS_KEY_ID ?? 'test', secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? 'test' },
    pollMs: 250,
    logger: { warn () {} },
  })
}
