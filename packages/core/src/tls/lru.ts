import type { SecureContext } from 'node:tls'

/** One certificate held by a ContextCache, and its SecureContext while it has one built. */
export class Slot {
  context: SecureContext | undefined = undefined
  /** its context could not be built; not retried until the certificate or the options change */
  failed = false
  newer: Slot | undefined = undefined
  older: Slot | undefined = undefined

  constructor (
    readonly primaryName: string,
    readonly names: readonly string[],
    /** the leaf alone (a flat copy, so the caller's chain string can be collected) */
    readonly leaf: string,
    /** the rest of the chain, shared by every certificate with the same intermediates */
    readonly tail: string,
    readonly privateKey: string,
    /** ms since the epoch (a Date would cost ~100 bytes more per certificate) */
    readonly notAfterMs: number
  ) {}
}

/**
 * The slots that have a context built, newest first, linked through the slots themselves:
 * touch, push and remove are a few pointer moves, with no allocation on the handshake path.
 */
export class SlotLru {
  size = 0
  #newest: Slot | undefined
  #oldest: Slot | undefined

  get oldest (): Slot | undefined {
    return this.#oldest
  }

  /** Adds a slot that is not in the list as the newest. */
  push (slot: Slot): void {
    slot.older = this.#newest
    slot.newer = undefined
    if (this.#newest !== undefined) this.#newest.newer = slot
    else this.#oldest = slot
    this.#newest = slot
    this.size++
  }

  /** Makes a slot in the list the newest. */
  touch (slot: Slot): void {
    if (this.#newest === slot) return
    this.remove(slot)
    this.push(slot)
  }

  /** Takes a slot out of the list (no-op if it is not in it). */
  remove (slot: Slot): void {
    const { newer, older } = slot
    if (newer === undefined && older === undefined && this.#newest !== slot) return
    if (newer !== undefined) newer.older = older
    else this.#newest = older
    if (older !== undefined) older.newer = newer
    else this.#oldest = newer
    slot.newer = slot.older = undefined
    this.size--
  }

  /** Empties the list, handing each slot to `each` (newest first). */
  clear (each: (slot: Slot) => void): void {
    for (let slot = this.#newest; slot !== undefined;) {
      const older: Slot | undefined = slot.older
      slot.newer = slot.older = undefined
      each(slot)
      slot = older
    }
    this.#newest = this.#oldest = undefined
    this.size = 0
  }
}
