import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import type { Storage } from '@fastify-acme/core'
import { challtestsrvClient, getText, startAcmeProxy, type AcmeProxy, type HarnessServices } from '@fastify-acme/harness'
import { storageFromUrl } from '@fastify-acme/storage-adapters'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** The real servers a scenario runs against, and where its logs go. */
export interface ScenarioEnv extends HarnessServices {
  /** every app and in-process logger writes here; secrets-in-logs scans all of it */
  logDir: string
}

export type StorageKind = 'redis' | 's3' | 'fs'

export const S3_BUCKET = 'reliability'

/** A short random label, valid in DNS names, storage namespaces and file names. */
export const tag = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`

const scratchDirs: string[] = []

/** Removes the fs storages made by freshStorageUrl (they hold the scenarios' test keys). */
export function removeScratchDirs (): void {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
}

/** A fresh, empty storage of `kind` on the shared servers, as an ACME_STORAGE URL. */
export async function freshStorageUrl (env: ScenarioEnv, kind: StorageKind, lockTtlMs?: number): Promise<string> {
  const ttl = lockTtlMs ? `lockTtlMs=${lockTtlMs}` : ''
  if (kind === 'redis') return `${env.redis.url}?namespace=${tag('rel-')}${ttl ? `&${ttl}` : ''}`
  if (kind === 'fs') {
    const dir = mkdtempSync(path.join(tmpdir(), 'reliability-fs-'))
    scratchDirs.push(dir)
    return `file://${dir}${ttl ? `?${ttl}` : ''}`
  }
  await ensureBucket(env)
  const endpoint = encodeURIComponent(env.s3.endpoint)
  return `s3://${S3_BUCKET}/${tag('rel-')}?endpoint=${endpoint}&region=${env.s3.region}&forcePathStyle=true${ttl ? `&${ttl}` : ''}`
}

/** The environment app processes need beside their config (S3 credentials for the SDK chain). */
export function appEnv (env: ScenarioEnv): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: env.s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: env.s3.credentials.secretAccessKey }
}

/** The parent's own view of an app storage (to read what the apps stored). */
export function openStorage (env: ScenarioEnv, url: string): Promise<Storage> {
  const quiet = { warn: () => {} }
  return storageFromUrl(url, { s3: { credentials: env.s3.credentials, logger: quiet }, redis: { logger: quiet } })
}

const buckets = new Set<string>()

async function ensureBucket (env: ScenarioEnv): Promise<void> {
  if (buckets.has(env.s3.endpoint)) return
  const client = new S3Client(env.s3)
  try {
    await client.send(new CreateBucketCommand({ Bucket: S3_BUCKET })).catch((err: Error) => {
      if (!/BucketAlready/.test(err.name)) throw err
    })
    buckets.add(env.s3.endpoint)
  } finally {
    client.destroy()
  }
}

/** Points `name` at `address` in challtestsrv (only there: add-a appends), so Pebble validates there. */
export async function pointName (env: ScenarioEnv, name: string, address: string): Promise<void> {
  const client = challtestsrvClient(env.challtestsrv.managementUrl, env.challtestsrv.dnsServer)
  await client.clearA(name)
  await client.addA(name, [address])
}

/** Pebble's current root: trust for what it issues. */
export function pebbleRoot (env: Pick<ScenarioEnv, 'pebble'>): Promise<string> {
  return getText(`${env.pebble.managementUrl}/roots/0`, env.pebble.caBundle)
}

/** A fault-injecting, request-logging ACME proxy in front of `pebble`. */
export function proxyFor (pebble: ScenarioEnv['pebble']): Promise<AcmeProxy> {
  return startAcmeProxy({ upstream: pebble.directoryUrl, upstreamCa: pebble.caBundle, tls: pebble.tls })
}

/** A sub-directory of the log dir for one scenario. */
export function logDirFor (env: ScenarioEnv, scenario: string): string {
  const dir = path.join(env.logDir, scenario)
  mkdirSync(dir, { recursive: true })
  return dir
}
