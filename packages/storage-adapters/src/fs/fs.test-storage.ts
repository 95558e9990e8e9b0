import { join } from 'node:path'
import { fsStorage } from './index.js'

/** The contract suite's factory: one directory per namespace under FS_STORAGE_TEST_DIR. */
export function createStorage (namespace: string) {
  const base = process.env.FS_STORAGE_TEST_DIR
  if (!base) throw new Error('FS_STORAGE_TEST_DIR is not set')
  return fsStorage({ dir: join(base, namespace) })
}
