import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, it } from 'vitest'
import { storageContract } from '../testing/index.js'

const base = mkdtempSync(join(tmpdir(), 'fs-storage-contract-'))
process.env.FS_STORAGE_TEST_DIR = base
afterAll(() => rmSync(base, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }))

storageContract({ describe, it, afterAll }, {
  name: 'fs',
  module: fileURLToPath(new URL('./fs.test-storage.ts', import.meta.url)),
  execArgv: ['--conditions=source', '--import', 'tsx'],
  env: { FS_STORAGE_TEST_DIR: base },
})
