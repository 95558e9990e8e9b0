import type { AcmeLab } from '../lib/acme-env.js'
import { caddy } from '../peers/caddy.js'
import { ours } from '../peers/ours.js'
import type { BenchContext, BenchResult } from '../report/result.js'
import { issuanceResult, measureIssuance, type IssuanceTimes } from './issuance.js'

const NAMES = 100

/** issuance.hundred: 100 certificates (one name each) at the start of one process, spawn to all 100 served. */
export async function issuanceHundred (ctx: BenchContext, lab: AcmeLab): Promise<{ result: BenchResult, times: IssuanceTimes }> {
  const { times, failures } = await measureIssuance(ctx, lab, [ours, caddy], NAMES, 'hundred')
  const result = issuanceResult('issuance.hundred', times, failures, 'faster than Caddy', (median, peers) => median < peers.caddy!,
    `${NAMES} certificates of one name each, default settings on both sides (ours: renewal.concurrency 10; Caddy 2.6.2: CertMagic's internal limiter of 10 orders per 10 s per account), spawn to a valid HTTPS response for all ${NAMES}`)
  return { times, result }
}
