import type { Dns01Provider } from './dns-01.js'
import type { ChallengeSolver, ChallengeTask } from './solver.js'

/** DNS-01 through a provider: the TXT record goes at `_acme-challenge.<name>` (wildcards included). */
export class Dns01Solver implements ChallengeSolver {
  readonly type = 'dns-01'

  constructor (private readonly provider: Dns01Provider) {}

  canSolve (identifier: { type: 'dns' | 'ip' }): boolean {
    return identifier.type === 'dns'
  }

  present (task: ChallengeTask): Promise<void> {
    return this.provider.present(`_acme-challenge.${task.identifier.value}`, task.keyAuthorization, task.signal)
  }

  cleanup (task: ChallengeTask): Promise<void> {
    return this.provider.cleanup(`_acme-challenge.${task.identifier.value}`, task.keyAuthorization)
  }
}
