import type { CertificateManager } from '../manager/manager.js'
import type { ManagerEventName, ManagerEvents } from '../manager/events.js'

/** One manager event as kept for the status page: names, CA, serial, error code and message; never a key. */
export interface StatusEvent {
  at: Date
  type: ManagerEventName
  names: string[]
  /** issuer key, when the event has one */
  issuer?: string
  serial?: string
  notAfter?: Date
  /** for obtaining and failed: whether a served certificate was being renewed */
  renewal?: boolean
  /** for obtaining: ordered with force */
  forced?: boolean
  /** for locked: how long the issuance lock took, in ms */
  waitMs?: number
  /** for obtained and renewed: how long the order took, in ms */
  durationMs?: number
  /** for updated: a new order here, or a certificate another instance stored */
  source?: 'order' | 'storage'
  /** for failed: the error code and message (at most 300 characters) */
  error?: { code: string, message: string }
  /** for failed: when any instance tries again (null: attempts stopped) */
  nextAttemptAt?: Date | null
}

export interface EventLogOptions {
  /** most events kept, newest first (default 100) */
  size?: number
  /** which events to keep (default all: locked, obtaining, obtained, renewed, failed, revoked, updated) */
  events?: ManagerEventName[]
}

const ALL_EVENTS: ManagerEventName[] = ['locked', 'obtaining', 'obtained', 'renewed', 'failed', 'revoked', 'updated']
const MAX_MESSAGE = 300

type EventSource = Pick<CertificateManager, 'on' | 'off'>

/** A bounded ring buffer of a manager's recent events, for a status page. */
export class ManagerEventLog {
  readonly size: number
  readonly #ring: StatusEvent[] = []
  #next = 0
  readonly #source: EventSource
  readonly #listeners: Array<[ManagerEventName, (payload: ManagerEvents[ManagerEventName]) => void]>

  constructor (source: EventSource, opts: EventLogOptions = {}) {
    const size = opts.size ?? 100
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError('event log size must be a positive integer')
    this.size = size
    this.#source = source
    this.#listeners = (opts.events ?? ALL_EVENTS).map((type) => [type, (payload) => this.record(type, payload)])
    for (const [type, listener] of this.#listeners) source.on(type, listener)
  }

  /** Adds an event (the manager's listeners call this). */
  record<E extends ManagerEventName> (type: E, payload: ManagerEvents[E], at = new Date()): void {
    const event = toStatusEvent(type, payload, at)
    if (this.#ring.length < this.size) this.#ring.push(event)
    else this.#ring[this.#next] = event
    this.#next = (this.#next + 1) % this.size
  }

  /** The kept events, newest first. */
  entries (): StatusEvent[] {
    const ordered = this.#ring.length < this.size ? this.#ring : [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)]
    return [...ordered].reverse()
  }

  /** Stops listening to the manager. */
  close (): void {
    for (const [type, listener] of this.#listeners) this.#source.off(type, listener)
    if (logs.get(this.#source) === this) logs.delete(this.#source)
  }
}

const logs = new WeakMap<EventSource, ManagerEventLog>()

/** The event log of `manager`, created (and listening) on the first call; later calls return the same one. */
export function managerEventLog (manager: EventSource, opts?: EventLogOptions): ManagerEventLog {
  let log = logs.get(manager)
  if (!log) {
    log = new ManagerEventLog(manager, opts)
    logs.set(manager, log)
  }
  return log
}

/** Copies only the fields a status page may show: an error keeps its code and a bounded message. */
function toStatusEvent (type: ManagerEventName, payload: ManagerEvents[ManagerEventName], at: Date): StatusEvent {
  const p = payload as Partial<ManagerEvents['failed'] & ManagerEvents['renewed'] & ManagerEvents['locked'] & ManagerEvents['obtaining'] & ManagerEvents['updated']>
  const event: StatusEvent = { at, type, names: [...(p.names ?? [])] }
  if (typeof p.issuer === 'string') event.issuer = p.issuer
  if (typeof p.serial === 'string') event.serial = p.serial
  if (p.notAfter instanceof Date) event.notAfter = p.notAfter
  if (typeof p.renewal === 'boolean') event.renewal = p.renewal
  if (typeof p.forced === 'boolean') event.forced = p.forced
  if (typeof p.waitMs === 'number') event.waitMs = p.waitMs
  if (typeof p.durationMs === 'number') event.durationMs = p.durationMs
  if (p.source === 'order' || p.source === 'storage') event.source = p.source
  if (p.error) {
    const message = String(p.error.message ?? '')
    event.error = { code: String(p.error.code ?? 'UNKNOWN'), message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message }
  }
  if (type === 'failed') event.nextAttemptAt = p.nextAttemptAt ?? null
  return event
}
