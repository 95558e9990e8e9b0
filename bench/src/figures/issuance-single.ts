import type { AcmeLab } from '../lib/acme-env.js'
import { acmeClientAuto } from '../peers/acme-client-auto.js'
import { caddy } from '../peers/caddy.js'
import { lego } from '../peers/lego.js'
import { ours } from '../peers/ours.js'
import type { BenchContext, BenchResult } from '../report/result.js'
import { issuanceResult, measureIssuance, type IssuanceTimes } from './issuance.js'

const TARGET_MS = 500

/** issuance.single: one name, fresh storage (account registration included), Pebble no-sleep. */
export async function issuanceSingle (ctx: BenchContext, lab: AcmeLab): Promise<{ result: BenchResult, times: IssuanceTimes }> {
  const { times, failures } = await measureIssuance(ctx, lab, [ours, caddy, acmeClientAuto, lego], 1, 'single')
  const result = issuanceResult('issuance.single', times, failures, `<= ${TARGET_MS} ms and below Caddy`, (median, peers) => median <= TARGET_MS && median < peers.caddy!,
    'ours and caddy: process spawn to the first HTTPS response verified against Pebble\'s root, fresh storage (account registration included); lego and acme-client auto(): spawn to the certificate in hand')
  return { times, result }
}
