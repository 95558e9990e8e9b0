import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import fs from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Files are private to the user the server runs as. */
export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

/**
 * Marks temporary files. `#` is outside the key alphabet, so no key ever maps to a temporary
 * file and list() can tell them apart by name alone.
 */
const TEMP_MARK = '#tmp-'

/** Unique per process (pids repeat across the hosts sharing a directory, and over time) */
const PROCESS_MARK = `${process.pid}-${randomBytes(6).toString('hex')}`
let tempCount = 0

/** `.<base>#tmp-<pid>-<random>-<n>` beside `path` (same directory, so rename stays atomic). */
export function tempPathFor (path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARK}${PROCESS_MARK}-${(tempCount++).toString(36)}`)
}

/** Removes a file; one that is already gone is fine. */
export async function removeFile (path: string): Promise<void> {
  await fs.unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
}

export function isTempName (name: string): boolean {
  return name.includes(TEMP_MARK)
}

/**
 * Writes `data` to a new temporary file (O_EXCL, 0600) and fsyncs it. Returns its path; the
 * caller renames or links it into place. With `makeDirs`, a missing directory is created.
 */
export async function writeTempFile (path: string, data: Uint8Array | string, opts: { makeDirs?: boolean } = {}): Promise<string> {
  const tmp = tempPathFor(path)
  const handle = await openTemp(tmp, opts.makeDirs === true)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (err) {
    await handle.close().catch(() => {})
    await removeFile(tmp)
    throw err
  }
  await handle.close()
  return tmp
}

/**
 * Opens a new temp file. Another process deleting the last key of this directory prunes it
 * (rmdir) at any moment until our temp file is in it; once it is, the directory is pinned. So
 * mkdir is retried right before the open, with nothing in between (the parent's fsync comes
 * after), which makes the window a sibling's rmdir must hit two system calls wide.
 */
async function openTemp (tmp: string, makeDirs: boolean): Promise<fs.FileHandle> {
  let created: string | undefined
  for (let attempt = 0; ; attempt++) {
    let handle: fs.FileHandle
    try {
      handle = await fs.open(tmp, 'wx', FILE_MODE)
    } catch (err) {
      if (!makeDirs || (err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 50) throw err
      // a pruner in step with us (its rmdir always queued between our mkdir and open) would win
      // every round: after a few, a random pause breaks the step
      if (attempt >= 3) await new Promise((resolve) => setTimeout(resolve, Math.random() * attempt))
      // a recursive mkdir racing an rmdir of the same path can itself fail with ENOENT: go round again
      created = await fs.mkdir(dirname(tmp), { recursive: true, mode: DIR_MODE }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined
        throw e
      }) ?? created
      continue
    }
    if (created) {
      await syncDir(dirname(created)).catch(async (err: unknown) => {
        await handle.close()
        await removeFile(tmp)
        throw err
      })
    }
    return handle
  }
}

/**
 * Replaces `path` atomically and durably: temp file, write, fsync, close, rename, fsync of the
 * directory. A reader (or a crash at any point) sees the old content or the new one in full.
 * Without the directory fsync the rename itself could be lost on power failure.
 */
export async function writeFileAtomic (path: string, data: Uint8Array | string, opts: { syncDir?: boolean, makeDirs?: boolean } = {}): Promise<void> {
  const tmp = await writeTempFile(path, data, { makeDirs: opts.makeDirs })
  try {
    await fs.rename(tmp, path)
  } catch (err) {
    await removeFile(tmp)
    throw err
  }
  if (opts.syncDir ?? true) await syncDir(dirname(path))
}

/** fsyncs a directory so that entries created, renamed or removed in it survive a crash. */
export async function syncDir (dir: string): Promise<void> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(dir, 'r')
  } catch (err) {
    // removed meanwhile (a concurrent delete): nothing left to make durable
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  try {
    await handle.sync()
  } catch (err) {
    // platforms without directory fsync (EINVAL, EPERM, EISDIR) keep rename's own guarantees
    if (!['EINVAL', 'EPERM', 'EISDIR', 'EBADF'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
  } finally {
    await handle.close()
  }
}

/** `mkdir -p` with mode 0700, then fsync of the parent of the first directory it created. */
export async function makeDirs (dir: string): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true, mode: DIR_MODE })
  if (first) await syncDir(dirname(first))
}

/**
 * Deletes temporary files older than `maxAgeMs` anywhere under `root`: leftovers of writers
 * that crashed between creating and renaming them. Younger ones may belong to a live writer in
 * another process, so they stay. Directories left empty by this are removed too.
 * Returns how many files it deleted.
 */
export async function sweepTempFiles (root: string, maxAgeMs: number, now = Date.now()): Promise<number> {
  let swept = 0
  const walk = async (dir: string): Promise<void> => {
    let entries: Dirent[]
    try {
      entries = await fs.readdir(dir, { withFileTypes: true })
    } catch {
      return
    }
    let removed = 0
    for (const entry of entries) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        await walk(path)
      } else if (isTempName(entry.name)) {
        const st = await fs.stat(path).catch(() => null)
        if (st && now - st.mtimeMs > maxAgeMs && await fs.unlink(path).then(() => true, () => false)) removed++
      }
    }
    swept += removed
    // ENOTEMPTY (a writer just created a file here) and ENOENT are expected: leave it
    if (removed > 0 && removed === entries.length && dir !== root) await fs.rmdir(dir).catch(() => {})
  }
  await walk(root)
  return swept
}
