import fs from 'node:fs/promises'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fsStorage } from './index.js'

const dir = mkdtempSync(join(tmpdir(), 'fs-prune-race-'))
afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }))

describe('fsStorage puts while other instances prune the directory', () => {
  // Cluster instances write and delete short-lived keys side by side (HTTP-01 tokens): every
  // delete prunes the directory when it was the last entry, under the feet of puts that are
  // about to create their temp file there. Here a pruner removes the empty directory as fast
  // as it can (as many deleting instances would); every put must still land.
  it('never fails a put with ENOENT because the directory was pruned meanwhile', async () => {
    const storage = fsStorage({ dir })
    const state = { pruning: true }
    const pruner = (async () => {
      while (state.pruning) await fs.rmdir(join(dir, 'tokens')).catch(() => {})
    })()
    const failures: string[] = []
    try {
      await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        for (let n = 0; n < 25; n++) {
          const key = `tokens/${i}-${n}`
          await storage.put(key, 'check').catch((err: Error) => { failures.push(err.message) })
          await storage.delete(key)
        }
      }))
    } finally {
      state.pruning = false
      await pruner
    }
    expect(failures, failures.join('\n')).toEqual([])
  })
})
