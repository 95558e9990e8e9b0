/*
 * Child process of the contract suite: `node worker.js <module> <exportName>`. Imports the
 * adapter's factory module, then runs operations sent over IPC (see peer-ops.ts) and answers
 * each with { id, ok, result | error }. Exits when the parent disconnects, so a crashed test
 * run leaves no process behind.
 */
import { pathToFileURL } from 'node:url'
import { createPeerOps, type PeerOp, type StorageFactory } from './peer-ops.js'

interface Request { id: number, op: PeerOp, args: never }

const [moduleRef, exportName = 'createStorage'] = process.argv.slice(2)
process.on('disconnect', () => process.exit(0))

try {
  const url = moduleRef!.startsWith('file:') ? moduleRef! : pathToFileURL(moduleRef!).href
  const factory = (await import(url))[exportName] as StorageFactory | undefined
  if (typeof factory !== 'function') throw new Error(`${moduleRef} has no function export "${exportName}"`)
  const ops = createPeerOps(factory)
  process.on('message', (msg: Request) => {
    const run = ops[msg.op] as (args: never) => Promise<unknown>
    const reply = (answer: object) => process.send!({ id: msg.id, ...answer }, () => {
      if (msg.op === 'close') process.disconnect()
    })
    run(msg.args).then(
      (result) => reply({ ok: true, result }),
      (err: Error & { code?: string }) => reply({ ok: false, error: { message: err.message, code: err.code, stack: err.stack } })
    )
  })
  process.send!({ ready: true })
} catch (err) {
  process.send!({ ready: false, error: String((err as Error).stack ?? err) })
  process.disconnect()
}
