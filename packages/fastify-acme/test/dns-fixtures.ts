import type { Dns01Provider } from '@fastify-acme/core'
import type { Knot } from '@fastify-acme/harness'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Wraps a provider so that each present() waits (up to 5 s) until `together` values have been
 * presented, then records the TXT strings Knot serves at that name. So a test sees every value
 * of one order at one name at once, whatever the CA's timing.
 */
export function observedProvider (inner: Dns01Provider, knot: Knot, together: number) {
  const seen: Array<{ fqdn: string, txt: string[] }> = []
  let arrived = 0
  let release!: () => void
  const all = new Promise<void>((resolve) => { release = resolve })
  const provider: Dns01Provider = {
    name: inner.name ?? 'observed',
    ...(inner.zoneFor ? { zoneFor: inner.zoneFor } : {}),
    async present (fqdn, value, signal) {
      await inner.present(fqdn, value, signal)
      if (++arrived === together) release()
      await Promise.race([all, sleep(5000)])
      seen.push({ fqdn, txt: (await knot.txt(fqdn)).sort() })
    },
    cleanup: (fqdn, value, signal) => inner.cleanup(fqdn, value, signal),
  }
  return { provider, seen }
}

/** Polls until `read` returns an empty list (cleanup may finish just after an order fails), up to 5 s. */
export async function eventuallyEmpty (read: () => Promise<string[]>): Promise<string[]> {
  const deadline = Date.now() + 5000
  for (;;) {
    const values = await read()
    if (values.length === 0 || Date.now() > deadline) return values
    await sleep(50)
  }
}
