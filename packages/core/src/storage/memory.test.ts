import { describe, it } from 'vitest'
import { storageContract } from '../../../storage-adapters/src/testing/index.js'
import type { Storage } from './contract.js'
import { memoryStorage } from './memory.js'

// memoryStorage lives in one process: the suite runs its multi-process tests with in-process
// peers and leaves out the ones that kill a process.
const byNamespace = new Map<string, Storage>()
storageContract({ describe, it }, {
  name: 'memory',
  multiProcess: false,
  lockPollMs: 50,
  create: (ns) => {
    let storage = byNamespace.get(ns)
    if (!storage) byNamespace.set(ns, storage = memoryStorage())
    return storage
  },
})
