import type { Authorization, Challenge, Order } from 'acme-client/types/rfc8555.js'
import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import type { Logger } from '../logger.js'
import { identifierOf } from '../names.js'
import type { ChallengeSolver, ChallengeTask, ChallengeType } from '../challenges/solver.js'
import type { InternalClient } from './client.js'
import { parseRetryAfter } from './client.js'
import { sleep } from './transport.js'

export interface PollOptions {
  /** first wait before polling an authorization or order, ms (default 250) */
  initialMs: number
  /** growth factor per poll (default 1.5) */
  factor: number
  /** longest wait between polls, ms (default 3000) */
  maxMs: number
  /** give up on one order after this long, ms (default 180 000), plus the longest a solver's present() may take */
  timeoutMs: number
}

export const DEFAULT_POLL: PollOptions = { initialMs: 250, factor: 1.5, maxMs: 3000, timeoutMs: 180_000 }

export interface OrderRequest {
  client: InternalClient
  names: string[]
  /** PEM PKCS#10 */
  csr: string
  solvers: ChallengeSolver[]
  /** challenge types to try last (they failed recently for these names) */
  demote?: ChallengeType[]
  /** told when the CA found a challenge's proof wrong: that type goes last at the next attempt */
  challengeFailed?: (name: string, type: ChallengeType) => void
  replaces?: string
  profile?: string
  preferredChain?: string
  poll?: PollOptions
  signal?: AbortSignal
  logger: Logger
}

export interface OrderResult {
  certificate: string
  orderUrl: string
  /** the challenge types that proved each identifier, for the log */
  challengeTypes: ChallengeType[]
}

/**
 * One ACME order, start to finish: newOrder (with `replaces` and `profile`), every pending
 * authorization solved in parallel, finalize, download. Challenge cleanup always runs.
 */
export async function placeOrder (req: OrderRequest): Promise<OrderResult> {
  const poll = req.poll ?? DEFAULT_POLL
  // a DNS-01 propagation wait longer than the CA's part of the order must not be cut short
  const timeoutMs = poll.timeoutMs + Math.max(0, ...req.solvers.map((s) => s.presentTimeoutMs ?? 0))
  const timeout = AbortSignal.timeout(timeoutMs)
  try {
    return await orderWithin(req, poll, req.signal ? AbortSignal.any([req.signal, timeout]) : timeout)
  } catch (err) {
    if (!timeout.aborted || req.signal?.aborted) throw err
    // a timeout is a failure of this attempt (recorded, backed off, next issuer), not an abort
    throw new AcmeError(ErrorCodes.TIMEOUT, `the order for ${req.names.join(', ')} did not complete within ${timeoutMs} ms`, { cause: err, retryable: true })
  }
}

async function orderWithin (req: OrderRequest, poll: PollOptions, signal: AbortSignal): Promise<OrderResult> {
  const { client, logger } = req
  const identifiers = req.names.map(identifierOf)

  let order: Order & { url: string }
  try {
    order = await client.createOrder({
      identifiers,
      ...(req.replaces ? { replaces: req.replaces } : {}),
      ...(req.profile ? { profile: req.profile } : {}),
    } as Parameters<InternalClient['createOrder']>[0]) as Order & { url: string }
  } catch (err) {
    // RFC 9773 §5: a CA may refuse `replaces` (already replaced, unknown); order without it.
    // Other refusals (a rejected name, a CA error already retried) would only repeat
    if (!req.replaces || !(err instanceof AcmeError) || !/:(alreadyReplaced|malformed)$/.test(err.problemType ?? '')) throw err
    logger.warn({ err: err.message }, 'the CA refused "replaces"; ordering without it')
    return orderWithin({ ...req, replaces: undefined }, poll, signal)
  }
  logger.debug({ order: order.url, names: req.names }, 'order created')

  const authzs = await client.getAuthorizations(order)
  // settle every authorization (and its cleanup) before failing, so no challenge is left behind
  const settled = await Promise.allSettled(authzs.map((authz) => authorize(req, authz, poll, signal)))
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  const used = settled.map((r) => (r as PromiseFulfilledResult<ChallengeType | undefined>).value)

  // every authorization is valid now, so the order is usually ready at once: look without waiting
  if (order.status === 'pending') order = await waitFor(client, order, ['ready', 'valid'], poll, signal, 'order', 0)
  if (order.status === 'ready') order = await finalize(client, order, req.csr)
  if (order.status !== 'valid') order = await waitFor(client, order, ['valid'], poll, signal, 'order', 10)
  logger.debug({ order: order.url }, 'order valid')
  const certificate: unknown = await client.getCertificate(order, req.preferredChain)
  if (typeof certificate !== 'string' || !certificate.includes('-----BEGIN CERTIFICATE-----')) {
    throw new AcmeError(ErrorCodes.CA_BAD_RESPONSE, `the CA sent no PEM certificate chain for ${order.url} (got ${typeof certificate === 'string' ? JSON.stringify(certificate.slice(0, 80)) : typeof certificate})`, { retryable: true })
  }
  return { certificate, orderUrl: order.url, challengeTypes: used.filter((t): t is ChallengeType => t !== undefined) }
}

/**
 * Finalizes a ready order. A retried finalize whose first answer was lost gets orderNotReady
 * (the CA has moved on): the order itself then says whether the CSR was taken.
 */
async function finalize (client: InternalClient, order: Order & { url: string }, csr: string): Promise<Order & { url: string }> {
  try {
    return { ...await client.finalizeOrder(order, csr), url: order.url } as Order & { url: string }
  } catch (err) {
    if (isAcmeError(err, ErrorCodes.ABORTED)) throw err
    const current = await client.api.apiRequest(order.url, null, [200]).catch(() => null)
    if (current && ['processing', 'valid'].includes(current.data?.status)) return { ...current.data, url: order.url }
    throw err
  }
}

/** Solves one authorization (unless already valid) and waits until the CA says valid. */
async function authorize (req: OrderRequest, authz: Authorization & { url: string }, poll: PollOptions, signal: AbortSignal) {
  if (authz.status === 'valid') return undefined
  if (authz.status !== 'pending') {
    throw new AcmeError(ErrorCodes.CHALLENGE_FAILED, `authorization for ${authz.identifier.value} is ${authz.status}`)
  }
  const wildcard = authz.wildcard === true
  const identifier = { type: authz.identifier.type as 'dns' | 'ip', value: authz.identifier.value }
  const solver = chooseSolver(req, authz, identifier, wildcard)
  const challenge = authz.challenges.find((c) => (c.type as string) === solver.type)!
  const keyAuthorization = await req.client.getChallengeKeyAuthorization(challenge)
  const task: ChallengeTask = { identifier, wildcard, type: solver.type, token: challenge.token, keyAuthorization, signal }
  try {
    await solver.present(task)
    await req.client.completeChallenge(challenge)
    const seen = solver.validationSeen?.(task)
    const done = await waitFor(req.client, authz, ['valid'], poll, signal, 'authorization', undefined, seen)
    req.logger.debug({ name: identifier.value, challenge: solver.type }, 'authorization valid')
    return done && solver.type
  } catch (err) {
    if (err instanceof AcmeError && err.code === ErrorCodes.CHALLENGE_FAILED) req.challengeFailed?.(`${wildcard ? '*.' : ''}${identifier.value}`, solver.type)
    throw err
  } finally {
    await solver.cleanup(task).catch((err) => req.logger.warn({ err: (err as Error).message, name: identifier.value }, 'challenge cleanup failed'))
  }
}

function chooseSolver (req: OrderRequest, authz: Authorization, identifier: { type: 'dns' | 'ip', value: string }, wildcard: boolean) {
  const offered = new Set<string>(authz.challenges.map((c: Challenge) => c.type))
  const usable = req.solvers.filter((s) => offered.has(s.type) && s.canSolve(identifier, wildcard))
  const demoted = req.demote ?? []
  usable.sort((a, b) => Number(demoted.includes(a.type)) - Number(demoted.includes(b.type)))
  const solver = usable[0]
  if (!solver) {
    const name = `${wildcard ? '*.' : ''}${identifier.value}`
    const enabled = req.solvers.map((s) => s.type).join(', ') || 'none'
    throw new AcmeError(ErrorCodes.NO_CHALLENGE,
      `no enabled challenge can prove ${name} (enabled: ${enabled}; the CA offers: ${[...offered].join(', ')})${wildcard ? '; wildcards need DNS-01' : ''}`)
  }
  return solver
}

/**
 * Polls an order or authorization until it reaches one of `want`, starting after `firstMs`
 * and backing off, never sooner than the CA's Retry-After. `hint` (the CA fetched our proof)
 * triggers an early poll. Fails at once on 'invalid', with the CA's reason.
 */
async function waitFor<T extends { url: string, status: string }> (
  client: InternalClient, item: T, want: string[], poll: PollOptions, signal: AbortSignal, what: string,
  firstMs = poll.initialMs, hint?: Promise<void>
): Promise<T> {
  let delay = firstMs
  let hinted = false
  for (;;) {
    if (hint && !hinted) {
      const early = hint.then(() => 'hint' as const, () => 'hint' as const)
      const slept = sleep(delay, signal).then(() => 'slept' as const)
      if (await Promise.race([early, slept]) === 'hint') {
        hinted = true
        await sleep(5, signal) // the CA records the result just after fetching our proof
      }
    } else {
      await sleep(delay, signal)
    }
    const res = await client.api.apiRequest(item.url, null, [200])
    const current = { ...res.data, url: item.url } as T
    if (want.includes(current.status)) return current
    // final states (RFC 8555 §7.1.6): waiting longer changes nothing
    if (['invalid', 'deactivated', 'expired', 'revoked'].includes(current.status)) throw invalidError(current, what)
    const retryAfter = parseRetryAfter(res.headers['retry-after'])
    const caWait = retryAfter ? retryAfter.getTime() - Date.now() : 0
    delay = Math.max(Math.min(delay * poll.factor, hinted ? poll.initialMs : poll.maxMs), caWait)
  }
}

function invalidError (item: Record<string, any>, what: string): AcmeError {
  const failed = Array.isArray(item.challenges) ? item.challenges.find((c: any) => c.error) : undefined
  const error = failed?.error ?? item.error
  const detail = error?.detail ?? 'no reason given'
  const name = item.identifier?.value ? ` for ${item.wildcard ? '*.' : ''}${item.identifier.value}` : ''
  const code = what === 'authorization' ? ErrorCodes.CHALLENGE_FAILED : ErrorCodes.CA_PROBLEM
  return new AcmeError(code, `${what}${name} is ${item.status ?? 'invalid'}${failed ? ` (${failed.type})` : ''}: ${detail}`, {
    problemType: error?.type, retryable: true,
  })
}
