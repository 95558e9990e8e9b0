// lock() + release() round trips on one storage, uncontended, after a warm-up.
// BENCH_CONFIG = {"kind":"fs"|"redis"|"s3","dir"?,"url"?,"s3"?:{endpoint,region,credentials,bucket},"iterations","warmup"}
// Prints one JSON line: {"samples":[ms, ...]}.
const config = JSON.parse(process.env.BENCH_CONFIG)

async function open () {
  if (config.kind === 'fs') {
    const { fsStorage } = await import('@fastify-acme/storage-adapters/fs')
    return fsStorage({ dir: config.dir })
  }
  if (config.kind === 'redis') {
    const { redisStorage } = await import('@fastify-acme/storage-adapters/redis')
    return redisStorage({ url: config.url, checkServer: false })
  }
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3')
  const { s3Storage } = await import('@fastify-acme/storage-adapters/s3')
  const { bucket, ...connection } = config.s3
  const client = new S3Client({ ...connection, forcePathStyle: true })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  return s3Storage({ bucket, client })
}

const storage = await open()
const samples = []
for (let i = 0; i < config.warmup + config.iterations; i++) {
  const started = performance.now()
  const lock = await storage.lock('bench/roundtrip', { ttlMs: 30_000 })
  await lock.release()
  if (i >= config.warmup) samples.push(performance.now() - started)
}
await storage.close?.()
process.stdout.write(JSON.stringify({ samples }) + '\n')
