import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import fs from 'node:fs/promises'
import { dirname, join } from 'node:path'

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

/**
 * `.#tmp-<pid>-<random>-<n>` beside `path` (same directory, so rename stays atomic). Not named
 * after `path`: a key whose last segment is near the 255-byte name limit must still fit.
 */
export function tempPathFor (path: string): string {
  return join(dirname(path), `.${TEMP_MARK}${PROCESS_MARK}-${(tempCount++).toString(36)}`)
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
  const { handle, created } = await openTemp(tmp, opts.makeDirs === true)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (err) {
    await handle.close().catch(() => {})
    await removeFile(tmp)
    // (a disk full: the directories made for this value go too, or list() would show a key with nothing in it)
    if (created) await removeEmptyDirs(dirname(tmp), dirname(created))
    throw err
  }
  await handle.close()
  return tmp
}

/** rmdir of `dir` and its parents up to (not including) `stop`, while they are empty. */
async function removeEmptyDirs (dir: string, stop: string): Promise<void> {
  for (let d = dir; d !== stop && d.startsWith(stop); d = dirname(d)) {
    if (!await fs.rmdir(d).then(() => true, () => false)) return
  }
}

/**
 * Opens a new temp file. Another process deleting the last key of this directory prunes it
 * (rmdir) at any moment until our temp file is in it; once it is, the directory is pinned. So
 * mkdir is retried right before the open, with nothing in between (the parent's fsync comes
 * after), which makes the window a sibling's rmdir must hit two system calls wide.
 */
async function openTemp (tmp: string, makeDirs: boolean): Promise<{ handle: fs.FileHandle, created?: string }> {
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
      const made = await mkdirs(dirname(tmp))
      if (made && (created === undefined || created.startsWith(made))) created = made // the shallowest
      continue
    }
    if (created) {
      await syncCreated(created, dirname(tmp)).catch(async (err: unknown) => {
        await handle.close()
        await removeFile(tmp)
        throw err
      })
    }
    return { handle, created }
  }
}

/**
 * `mkdir -p` with mode 0700: the first directory it created, if any. Its ENOENT means either a
 * concurrent rmdir of a parent (a race: undefined, try again) or any failure below an existing
 * directory (EROFS, ENOSPC, EACCES, which it reports as ENOENT): a plain mkdir of the first
 * missing level then tells the real error, which is thrown.
 */
async function mkdirs (dir: string): Promise<string | undefined> {
  try {
    return await fs.mkdir(dir, { recursive: true, mode: DIR_MODE })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  let missing = dir
  while (dirname(missing) !== missing && !await fs.stat(dirname(missing)).then(() => true, () => false)) missing = dirname(missing)
  const cause = await fs.mkdir(missing, { mode: DIR_MODE }).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  if (cause && cause.code !== 'EEXIST' && cause.code !== 'ENOENT') throw cause
  return cause ? undefined : missing
}

/** fsyncs the parent of every directory from `first` (the first one mkdir -p created) down to `dir`: each new entry survives a crash. */
async function syncCreated (first: string, dir: string): Promise<void> {
  const created = [dir]
  while (created[0] !== first && created[0]!.startsWith(first)) created.unshift(dirname(created[0]!))
  for (const d of created) await syncDir(dirname(d))
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

/** `mkdir -p` with mode 0700 (its real error, not ENOENT), then fsync of each new directory's parent. */
export async function makeDirs (dir: string): Promise<void> {
  const first = await mkdirs(dir)
  if (first) await syncCreated(first, dir)
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
    // a directory left empty (a crashed put made it): list() would show a key with nothing in it
    if (entries.length === 0 && dir !== root) {
      const st = await fs.stat(dir).catch(() => null)
      if (st && now - st.mtimeMs > maxAgeMs) await fs.rmdir(dir).catch(() => {})
      return
    }
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
