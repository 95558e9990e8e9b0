import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { AcmeError, ErrorCodes } from '../errors.js'
import type { Storage, StorageStat } from './contract.js'
import { assertStorageKey } from './keys.js'

export interface EncryptionKey {
  /**
   * Names the key in every value it encrypts, so values written before a rotation still find
   * their key. 1-32 characters of `[A-Za-z0-9._-]`, unique in the keyring.
   */
  id: string
  /** 32 random bytes (AES-256). Keep it out of the storage it protects. */
  key: Uint8Array
}

export interface EncryptedStorageOptions {
  /**
   * The keyring. The first key encrypts every new value; any key decrypts the values carrying
   * its id. To rotate, put a new key first and keep the old ones until every value was rewritten.
   */
  keys: EncryptionKey[]
}

const MAGIC = Buffer.from('FAE', 'latin1')
const VERSION = 1
const KEY_ID_BYTES = 32
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** magic(3) | version(1) | key id, zero-padded(32) | nonce(12) | tag(16) | ciphertext */
export const ENCRYPTION_OVERHEAD = MAGIC.length + 1 + KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES
const KEY_ID = /^[A-Za-z0-9._-]{1,32}$/

/** Whether a stored value was written by encryptedStorage() (its header), without any key. */
export function isEncryptedValue (value: Uint8Array | null | undefined): boolean {
  return value != null && value.length >= MAGIC.length && Buffer.from(value.buffer, value.byteOffset, MAGIC.length).equals(MAGIC)
}

/**
 * Encrypts every value of `inner` at rest with AES-256-GCM. The storage key is authenticated
 * with each value (as associated data, with the header), so a value copied under another key,
 * a flipped byte, a changed key id or a missing key all fail with ERR_ACME_STORAGE_CORRUPT
 * instead of returning wrong bytes. Keys, sizes, times and lock records stay readable:
 * list/stat/delete and the locks pass straight through (stat reports the plaintext size).
 * close() closes `inner`.
 */
export function encryptedStorage (inner: Storage, options: EncryptedStorageOptions): Storage {
  const keys = parseKeyring(options?.keys)
  const current = keys[0]!
  const byId = new Map(keys.map((k) => [k.id, k]))

  const header = (keyId: string) => {
    const out = Buffer.alloc(MAGIC.length + 1 + KEY_ID_BYTES)
    MAGIC.copy(out, 0)
    out[MAGIC.length] = VERSION
    out.write(keyId, MAGIC.length + 1, 'latin1')
    return out
  }
  const aad = (head: Buffer, key: string) => Buffer.concat([head, Buffer.from(key, 'utf8')])
  const corrupt = (key: string, why: string) =>
    new AcmeError(ErrorCodes.STORAGE_CORRUPT, `encrypted value at "${key}" ${why}`)

  const encrypt = (key: string, plain: Uint8Array): Uint8Array => {
    const head = header(current.id)
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', current.key, nonce)
    cipher.setAAD(aad(head, key))
    const body = Buffer.concat([cipher.update(plain), cipher.final()])
    return Buffer.concat([head, nonce, cipher.getAuthTag(), body])
  }

  const decrypt = (key: string, blob: Uint8Array): Uint8Array => {
    const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)
    // Said plainly: the usual cause is encryption turned on over a storage written without it,
    // and reading such a value anyway would let anyone with write access plant values.
    if (!isEncryptedValue(bytes)) {
      throw new AcmeError(ErrorCodes.STORAGE_CORRUPT, `value at "${key}" is not encrypted (plaintext, or written by something else): ` +
        'was encryption turned on over an existing storage? Migrate it as docs/storage.md "Turning encryption on" describes')
    }
    if (bytes.length < ENCRYPTION_OVERHEAD) throw corrupt(key, `is truncated (${bytes.length} bytes, shorter than its header)`)
    if (bytes[MAGIC.length] !== VERSION) throw corrupt(key, `has unknown format version ${bytes[MAGIC.length]}`)
    let offset = MAGIC.length + 1
    const head = bytes.subarray(0, offset + KEY_ID_BYTES)
    const keyId = bytes.subarray(offset, offset + KEY_ID_BYTES).toString('latin1').replace(/\0+$/, '')
    offset += KEY_ID_BYTES
    const entry = byId.get(keyId)
    if (!entry) throw corrupt(key, `was encrypted with key id ${JSON.stringify(keyId)}, which is not in the keyring`)
    const nonce = bytes.subarray(offset, offset += NONCE_BYTES)
    const tag = bytes.subarray(offset, offset += TAG_BYTES)
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, nonce)
      decipher.setAAD(aad(head, key))
      decipher.setAuthTag(tag)
      return Buffer.concat([decipher.update(bytes.subarray(offset)), decipher.final()])
    } catch (err) {
      throw new AcmeError(ErrorCodes.STORAGE_CORRUPT,
        `encrypted value at "${key}" failed authentication (tampered, moved from another key, or a wrong key "${keyId}")`, { cause: err })
    }
  }

  const wrapped: Storage = {
    async get (key) {
      assertStorageKey(key)
      const blob = await inner.get(key)
      return blob === null ? null : decrypt(key, blob)
    },
    async put (key, value) {
      assertStorageKey(key)
      await inner.put(key, encrypt(key, typeof value === 'string' ? Buffer.from(value, 'utf8') : value))
    },
    delete: (key) => inner.delete(key),
    list: (prefix, opts) => inner.list(prefix, opts),
    async stat (key): Promise<StorageStat | null> {
      const st = await inner.stat(key)
      return st?.isFile ? { ...st, size: Math.max(0, st.size - ENCRYPTION_OVERHEAD) } : st
    },
    lock: (name, opts) => inner.lock(name, opts),
    tryLock: (name, opts) => inner.tryLock(name, opts),
  }
  if (inner.watch) wrapped.watch = inner.watch.bind(inner)
  if (inner.close) wrapped.close = inner.close.bind(inner)
  return wrapped
}

/**
 * A keyring written as text, for an environment variable: `id:key[,id:key...]`, each key 32
 * bytes in base64 or base64url, the first one encrypting new values. Errors name `source` and
 * never show a key.
 */
export function parseEncryptionKeys (text: string, source = 'ACME_STORAGE_KEYS'): EncryptionKey[] {
  const entries = typeof text === 'string' ? text.split(',').map((e) => e.trim()).filter((e) => e !== '') : []
  if (entries.length === 0) throw new AcmeError(ErrorCodes.INVALID_OPTION, `${source} must be id:key[,id:key...] with 32-byte base64 keys`)
  const keys = entries.map((entry, i) => {
    const at = entry.indexOf(':')
    const id = at > 0 ? entry.slice(0, at) : ''
    const encoded = entry.slice(at + 1)
    const key = Buffer.from(encoded, encoded.includes('-') || encoded.includes('_') ? 'base64url' : 'base64')
    if (!KEY_ID.test(id) || key.byteLength !== 32 || !/^[A-Za-z0-9+/_-]+=*$/.test(encoded)) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION,
        `${source}: entry ${i + 1} must be <id>:<32 bytes in base64>, the id 1-32 characters of [A-Za-z0-9._-] (value not shown: it is a secret)`)
    }
    return { id, key }
  })
  parseKeyring(keys) // unique ids
  return keys
}

function parseKeyring (keys: unknown): Array<{ id: string, key: Buffer }> {
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, 'encryptedStorage: option "keys" must be a non-empty array of { id, key }')
  }
  const seen = new Set<string>()
  return keys.map((k: Partial<EncryptionKey>, i) => {
    if (typeof k?.id !== 'string' || !KEY_ID.test(k.id)) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `encryptedStorage: keys[${i}].id must be 1-32 characters of [A-Za-z0-9._-]`)
    }
    if (seen.has(k.id)) throw new AcmeError(ErrorCodes.INVALID_OPTION, `encryptedStorage: key id "${k.id}" appears twice`)
    seen.add(k.id)
    if (!(k.key instanceof Uint8Array) || k.key.byteLength !== 32) {
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `encryptedStorage: keys[${i}].key must be a Uint8Array of 32 bytes`)
    }
    return { id: k.id, key: Buffer.from(k.key) }
  })
}
