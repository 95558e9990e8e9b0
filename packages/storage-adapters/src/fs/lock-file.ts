import fs from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { makeDirs, removeFile, writeTempFile } from './atomic-file.js'

/**
 * File locks, one directory per lock name. Design notes (why it is shaped like this):
 *
 * Every acquisition creates a NEW file named after its fence, `#<fence>` (zero-padded), with
 * link(2) from a fully written temp file: link fails with EEXIST when the name exists, so of all
 * contenders that saw the same newest generation stale (or released), exactly one creates the
 * next one. The classic single `x.lock` file (CertMagic, proper-lockfile) needs "delete the
 * stale file, then create" for takeover, and two contenders that both judged it stale can
 * each end up holding it (ABA). Here no one ever deletes the file they compete for.
 *
 * The holder is the newest generation. Old generations are pruned by each new winner, but the
 * newest one is never deleted: release rewrites it as `released`. So the newest fence survives
 * restarts and is the fence counter. Pruning makes a name reusable, and a contender acting on
 * a very old directory listing could re-create a pruned generation; it would then find a newer
 * one when it re-reads the directory after its link, and back off (see claimGeneration).
 *
 * Records are only ever replaced whole (link or rename of a synced temp file), never truncated
 * in place, so a reader never sees an empty or partial record (certmagic#232).
 */
export interface LockRecord {
  token: string
  owner: { host: string, pid: number }
  fence: number
  /** ms since the epoch of the last acquisition or renewal */
  heartbeatAt: number
  /** the holder's lease: stale once heartbeatAt is older than this */
  ttlMs: number
  released?: true
}

const GENERATION = /^#(\d{16,})$/
export const generationName = (fence: number) => `#${String(fence).padStart(16, '0')}`

/** Fences present in `dir`, newest last ([] when the directory does not exist). */
export async function generations (dir: string): Promise<number[]> {
  let names: string[]
  try {
    names = await fs.readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names.flatMap((n) => { const m = GENERATION.exec(n); return m ? [Number(m[1])] : [] }).sort((a, b) => a - b)
}

const newest = async (dir: string) => (await generations(dir)).at(-1) ?? 0

/** The record of one generation; `record` is null when the file exists but is not a record. */
export async function readGeneration (dir: string, fence: number): Promise<{ record: LockRecord | null, mtimeMs: number } | null> {
  let text: string
  let mtimeMs: number
  try {
    // one open file: the content and the mtime are of the same generation file, even if a
    // release or renewal renames a new one into place meanwhile
    // (records are never changed in place, so the size read first is the size of the content)
    const handle = await fs.open(join(dir, generationName(fence)), 'r')
    try {
      const st = await handle.stat()
      mtimeMs = st.mtimeMs
      const bytes = Buffer.alloc(st.size)
      for (let at = 0, n = 1; at < bytes.length && n > 0; at += n) n = (await handle.read(bytes, at, bytes.length - at, at)).bytesRead
      text = bytes.toString('utf8')
    } finally {
      await handle.close()
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  let record: LockRecord | null = null
  try { record = JSON.parse(text) as LockRecord } catch {}
  return { record: record && typeof record.token === 'string' ? record : null, mtimeMs }
}

/**
 * Held means not released and renewed within its TTL. The later of the recorded heartbeat and
 * the file's mtime counts (on NFS mtime is the server's clock), so clock skew delays a takeover
 * rather than hastening it. A file that is not a record is judged by its mtime and `fallbackTtlMs`.
 */
export function isHeld (entry: { record: LockRecord | null, mtimeMs: number }, now: number, fallbackTtlMs: number): boolean {
  const { record, mtimeMs } = entry
  if (record?.released) return false
  return now - Math.max(record?.heartbeatAt ?? 0, mtimeMs) <= (record?.ttlMs ?? fallbackTtlMs)
}

export function newRecord (token: string, fence: number, ttlMs: number): LockRecord {
  return { token, owner: { host: hostname(), pid: process.pid }, fence, heartbeatAt: Date.now(), ttlMs }
}

/**
 * Creates generation `fence` with `record`, and keeps it only if it is the newest: see the
 * notes at the top. True when the caller now holds the lock.
 */
export async function claimGeneration (dir: string, fence: number, record: LockRecord): Promise<boolean> {
  const path = join(dir, generationName(fence))
  const tmp = await writeTempFile(path, JSON.stringify(record))
  let linked: boolean
  try {
    await fs.link(tmp, path)
    linked = true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    // NFS may report EEXIST for a link whose first reply was lost: the link count tells
    linked = (await fs.stat(tmp)).nlink === 2
  } finally {
    await removeFile(tmp)
  }
  if (!linked) return false
  const after = await generations(dir)
  if (after.at(-1)! > fence) {
    await removeFile(path)
    return false
  }
  await Promise.all(after.filter((g) => g < fence).map((g) => removeFile(join(dir, generationName(g)))))
  return true
}

/** One attempt to acquire: the new fence, or null when the lock is held (or just taken by someone else). */
export async function acquireLockFile (dir: string, token: string, ttlMs: number, fallbackTtlMs: number): Promise<number | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let top = await newest(dir)
    if (top === 0) {
      await makeDirs(dir)
      top = await newest(dir)
    }
    if (top > 0) {
      const current = await readGeneration(dir, top)
      // pruned between readdir and read: a newer generation exists, look again
      if (!current) continue
      if (isHeld(current, Date.now(), fallbackTtlMs)) return null
    }
    const fence = top + 1
    try {
      return await claimGeneration(dir, fence, newRecord(token, fence, ttlMs)) ? fence : null
    } catch (err) {
      // the temp sweep removed a directory that held only a crashed acquirer's temp file
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return null
}

/**
 * Extends the lease of generation `fence` if `token` still holds it. Refuses (false) when the
 * record is not ours, is released, a newer generation exists, or the lease is about to run
 * out: a contender may already be judging it stale, and a renewal racing a takeover could
 * leave two holders until the next renewal.
 */
export async function renewLockFile (dir: string, fence: number, token: string, ttlMs: number): Promise<boolean> {
  const current = await readGeneration(dir, fence)
  const record = current?.record
  if (!record || record.token !== token || record.released) return false
  if (Date.now() - Math.max(record.heartbeatAt, current.mtimeMs) > ttlMs - Math.min(1000, ttlMs / 10)) return false
  if (await newest(dir) > fence) return false
  await replaceGeneration(dir, fence, { ...record, heartbeatAt: Date.now() })
  return await newest(dir) === fence
}

/** Marks generation `fence` released if `token` holds it; anything else is left alone. */
export async function releaseLockFile (dir: string, fence: number, token: string): Promise<void> {
  const record = (await readGeneration(dir, fence))?.record
  if (!record || record.token !== token || record.released) return
  await replaceGeneration(dir, fence, { ...record, heartbeatAt: Date.now(), released: true })
}

async function replaceGeneration (dir: string, fence: number, record: LockRecord): Promise<void> {
  const path = join(dir, generationName(fence))
  const tmp = await writeTempFile(path, JSON.stringify(record))
  try {
    await fs.rename(tmp, path)
  } catch (err) {
    await removeFile(tmp)
    throw err
  }
}
