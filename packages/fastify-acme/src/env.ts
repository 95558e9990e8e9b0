import { AcmeError, ErrorCodes, KEY_TYPES } from '@fastify-acme/core'
import type { FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'

/** The environment variables the plugin reads (code options win over them). */
export interface AcmeEnv {
  /** certificates separated by ';', names in one certificate by ',': "a.com,www.a.com;b.com" */
  ACME_DOMAINS?: string
  ACME_EMAIL?: string
  /** 'letsencrypt', 'letsencrypt-staging', 'local', ... or a directory URL */
  ACME_DIRECTORY_URL?: string
  /** file:///var/lib/acme | redis://host:6379/0 | s3://bucket/prefix?region=..&endpoint=.. */
  ACME_STORAGE?: string
  /** encrypts the storage the plugin opens: id:key[,id:key...], 32-byte base64 keys, the first encrypting */
  ACME_STORAGE_KEYS?: string
  ACME_EAB_KID?: string
  ACME_EAB_HMAC_KEY?: string
  /** PEM text, or the path of a PEM file */
  ACME_CA_BUNDLE?: string
  ACME_TERMS_OF_SERVICE_AGREED?: boolean
  /** port of the HTTP-01 listener (default 80) */
  ACME_HTTP_PORT?: number
  ACME_HTTP_HOST?: string
  ACME_KEY_TYPE?: string
}

const schema = {
  type: 'object',
  properties: {
    ACME_DOMAINS: { type: 'string', minLength: 1 },
    ACME_EMAIL: { type: 'string', minLength: 3 },
    ACME_DIRECTORY_URL: { type: 'string', minLength: 1 },
    ACME_STORAGE: { type: 'string', pattern: '^(file|redis|rediss|s3):' },
    ACME_STORAGE_KEYS: { type: 'string', minLength: 1 },
    ACME_EAB_KID: { type: 'string', minLength: 1 },
    ACME_EAB_HMAC_KEY: { type: 'string', pattern: '^[A-Za-z0-9_\\-+/]+=*$' },
    ACME_CA_BUNDLE: { type: 'string', minLength: 1 },
    ACME_TERMS_OF_SERVICE_AGREED: { type: 'boolean' },
    ACME_HTTP_PORT: { type: 'integer', minimum: 0, maximum: 65535 },
    ACME_HTTP_HOST: { type: 'string', minLength: 1 },
    ACME_KEY_TYPE: { type: 'string', enum: [...KEY_TYPES] },
  },
} as const

/**
 * Reads and validates the ACME_* variables with @fastify/env, in a child context so that
 * nothing is decorated on the app. A bad value throws ERR_ACME_INVALID_OPTION naming the
 * variable (never echoing ACME_EAB_HMAC_KEY).
 */
export async function readAcmeEnv (fastify: FastifyInstance, data: Record<string, string | undefined>): Promise<AcmeEnv> {
  let env: AcmeEnv = {}
  // @fastify/env (ajv) costs ~65 ms to load: skip it when no ACME_* variable is set
  if (!Object.keys(data).some((key) => key.startsWith('ACME_'))) return env
  const { default: fastifyEnv } = await import('@fastify/env')
  try {
    await fastify.register(async (child) => {
      await child.register(fastifyEnv, { confKey: 'acmeEnv', schema, data, dotenv: false })
      env = (child as unknown as { acmeEnv: AcmeEnv }).acmeEnv
    })
  } catch (cause) {
    const message = (cause as Error).message.replace(/env\/?/g, '').replace(/\s+/g, ' ')
    throw new AcmeError(ErrorCodes.INVALID_OPTION, `invalid ACME environment: ${message}`, { cause })
  }
  return env
}

/** "a.com,www.a.com;b.com" -> [['a.com', 'www.a.com'], ['b.com']] */
export function parseDomains (value: string): string[][] {
  return value.split(';').map((cert) => cert.split(',').map((n) => n.trim()).filter(Boolean)).filter((c) => c.length > 0)
}

/** PEM text as given, or the contents of the file it names. */
export function readCaBundle (value: string, source = 'ACME_CA_BUNDLE'): string {
  if (value.includes('-----BEGIN')) return value
  try {
    return readFileSync(value, 'utf8')
  } catch (cause) {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, `${source} is neither PEM text nor a readable file: ${JSON.stringify(value.slice(0, 100))}`, { cause })
  }
}
