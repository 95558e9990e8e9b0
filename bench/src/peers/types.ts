import type { AcmeEnv } from '../lib/acme-env.js'

/** One system getting certificates from the shared Pebble. */
export interface IssuancePeer {
  /** key in results `peers` ('ours' for fastify-acme) */
  readonly key: string
  /** what its time measures, for the notes */
  readonly measures: string
  /** gets a certificate for each name (fresh storage), resolves with ms from process spawn to done */
  issue (job: IssuanceJob): Promise<number>
}

export interface IssuanceJob {
  env: AcmeEnv
  names: string[]
  /** a loopback address no one else uses; the names resolve to it */
  address: string
  /** an empty directory for this run's storage and config */
  dir: string
}
