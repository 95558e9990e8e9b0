import type { Storage } from '@fastify-acme/core'
import { createPrivateKey } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

/** One secret to look for in logs, as every string it could be written as. */
interface Secret {
  label: string
  needles: string[]
}

const secrets: Secret[] = []

/** Anything that is a private key whatever its owner: PEM headers and JWK private members. */
const GENERIC = [
  { label: 'PEM private key header', pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  { label: 'JWK private member', pattern: /"(d|p|q|dp|dq|qi)"\s*:\s*"[A-Za-z0-9_-]{20,}"/ },
  { label: 'EAB HMAC key field', pattern: /"?hmacKey"?\s*[:=]\s*"?[A-Za-z0-9_+/-]{16,}/ },
]

/** Registers a plain secret (an EAB HMAC key): its text and the hex and base64 of its bytes. */
export function addSecret (label: string, value: string): void {
  const bytes = Buffer.from(value, 'base64url')
  secrets.push({ label, needles: [value, bytes.toString('hex'), bytes.toString('base64').replace(/=+$/, '')].filter((n) => n.length >= 16) })
}

/**
 * Registers a PEM private key: its private scalar (JWK `d`) as base64url, base64 and hex, the
 * PEM body lines after the first (the first is mostly the algorithm header every key shares),
 * and the base64 just past a P-256 PKCS#8 header, where `d` starts.
 */
export function addPrivateKey (label: string, pem: string): void {
  const jwk = createPrivateKey(pem).export({ format: 'jwk' })
  const d = Buffer.from(jwk.d ?? '', 'base64url')
  const lines = pem.split('\n').filter((l) => l && !l.startsWith('-----'))
  const body = lines.join('')
  secrets.push({
    label,
    needles: [jwk.d ?? '', d.toString('base64').replace(/=+$/, ''), d.toString('hex'), ...lines.slice(1), body.slice(48, 80)].filter((n) => n.length >= 16),
  })
}

/** Registers every certificate key and account key found in `storage`. */
export async function addStoredSecrets (storage: Storage, label: string): Promise<number> {
  let found = 0
  for (const prefix of ['certificates', 'accounts']) {
    for (const key of await storage.list(prefix, { recursive: true })) {
      if (!/(bundle|[^/]+)\.json$/.test(key) || key.endsWith('state.json')) continue
      const bytes = await storage.get(key).catch(() => null)
      if (!bytes) continue
      try {
        const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as { privateKey?: string, accountKey?: string }
        const pem = value.privateKey ?? value.accountKey
        if (pem) { addPrivateKey(`${label} ${key}`, pem); found++ }
      } catch {}
    }
  }
  return found
}

export interface ScanResult {
  files: number
  bytes: number
  /** secrets registered (keys and HMAC keys) */
  secrets: number
  hits: Array<{ file: string, what: string, line: number }>
}

/** Scans every file under `dir` for the registered secrets and for private key material in general. */
export function scanLogs (dir: string): ScanResult {
  const result: ScanResult = { files: 0, bytes: 0, secrets: secrets.length, hits: [] }
  for (const file of walk(dir)) {
    const text = readFileSync(file, 'utf8')
    result.files++
    result.bytes += text.length
    const lines = text.split('\n')
    lines.forEach((line, i) => {
      for (const { label, pattern } of GENERIC) if (pattern.test(line)) result.hits.push({ file, what: label, line: i + 1 })
      for (const secret of secrets) {
        if (secret.needles.some((n) => line.includes(n))) result.hits.push({ file, what: secret.label, line: i + 1 })
      }
    })
  }
  return result
}

function walk (dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry)
    return statSync(full).isDirectory() ? walk(full) : [full]
  })
}
