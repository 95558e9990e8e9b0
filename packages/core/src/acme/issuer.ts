import type { CertificateBundle, IssueRequest, IssuedCertificate, Issuer, RenewalInfo } from '../certificate.js'
import type { ChallengeSolver, ChallengeType } from '../challenges/solver.js'
import { AcmeError, ErrorCodes, isAcmeError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { IssuerConfig } from '../manager/options.js'
import type { Storage } from '../storage/contract.js'
import { issuerKeyOf } from '../storage/keys.js'
import { clientFor, loadOrCreateAccount, replaceAccount, rolloverAccountKey, type AccountContext, type StoredAccount } from './account.js'
import { parseRenewalInfo } from './ari.js'
import { DEFAULT_RETRY, loadAcmeClient, problemError, withRetries, type RetryPolicy } from './client.js'
import { placeOrder, type PollOptions } from './order.js'
import { DEFAULT_ORDER_RATE_LIMIT, SlidingWindowLimiter } from './rate-limit.js'
import { Transport } from './transport.js'

/** One ACME CA: the CA options of the manager, with the directory URL resolved. */
export interface AcmeIssuerOptions extends Omit<IssuerConfig, 'directoryUrl'> {
  /** the CA's directory URL (shortcuts are resolved by the manager) */
  directoryUrl: string
  /** in-request retries of CA calls (default: 5 attempts from 500 ms, longer Retry-After goes back to the scheduler) */
  retry?: RetryPolicy
  /** order and authorization polling (default: from 250 ms, x1.5, at most 3 s, 180 s per order) */
  poll?: PollOptions
}

export interface AcmeIssuerDeps {
  storage: Storage
  /** the enabled challenge solvers (the manager owns them) */
  solvers: ChallengeSolver[]
  logger: Logger
  /** challenge types that failed lately for a name, tried last */
  demoted?: (names: string[]) => ChallengeType[]
  /** told which challenge type the CA failed for a name */
  challengeFailed?: (name: string, type: ChallengeType) => void
}

/** An Issuer backed by an RFC 8555 CA, through acme-client with our own transport and orchestration. */
export class AcmeIssuer implements Issuer {
  readonly key: string
  readonly directoryUrl: string
  private readonly transport: Transport
  private readonly limiter: SlidingWindowLimiter
  private directoryCache?: { value: Record<string, any>, at: number }
  private readonly ctx: AccountContext

  constructor (readonly options: AcmeIssuerOptions, private readonly deps: AcmeIssuerDeps) {
    this.directoryUrl = options.directoryUrl
    this.key = issuerKeyOf(options.directoryUrl)
    this.transport = new Transport({ caBundle: options.caBundle, logger: deps.logger })
    this.limiter = new SlidingWindowLimiter(options.orderRateLimit ?? DEFAULT_ORDER_RATE_LIMIT)
    this.ctx = {
      storage: deps.storage,
      issuerKey: this.key,
      directoryUrl: options.directoryUrl,
      email: options.email?.toLowerCase(),
      termsOfServiceAgreed: options.termsOfServiceAgreed,
      eab: options.eab,
      transport: this.transport,
      logger: deps.logger,
      directory: () => this.directory(),
      cachedDirectory: () => this.directoryCache?.value,
    }
  }

  /** The CA's directory, fetched once and cached for 24 h. */
  async directory (signal?: AbortSignal): Promise<Record<string, any>> {
    if (this.directoryCache && Date.now() - this.directoryCache.at < 86_400_000) return this.directoryCache.value
    const res = await withRetries(this.options.retry ?? DEFAULT_RETRY, this.transport, signal, this.deps.logger, `GET ${this.directoryUrl}`, async () => {
      const r = await this.transport.request(this.directoryUrl, 'GET', undefined, signal)
      if (r.status !== 200 || typeof r.data !== 'object' || r.data === null || typeof r.data.newOrder !== 'string') throw problemError(r, 'GET', this.directoryUrl)
      return r
    })
    this.directoryCache = { value: res.data, at: Date.now() }
    return res.data
  }

  prepare (): void {
    loadAcmeClient()
  }

  account (signal?: AbortSignal): Promise<StoredAccount> {
    return loadOrCreateAccount({ ...this.ctx, signal })
  }

  async issue (request: IssueRequest): Promise<IssuedCertificate> {
    const { signal } = request
    const directory = await this.directory(signal)
    const profile = this.options.profile && directory.meta?.profiles?.[this.options.profile] !== undefined ? this.options.profile : undefined
    if (this.options.profile && !profile) this.deps.logger.warn({ profile: this.options.profile }, 'the CA does not offer this profile; ordering without one')
    let account = await this.account(signal)
    for (let attempt = 1; ; attempt++) {
      await this.limiter.take(signal)
      try {
        const result = await placeOrder({
          client: clientFor(this.ctx, account.accountKey, account.accountUrl, signal),
          names: request.names,
          csr: request.csr,
          solvers: this.deps.solvers,
          demote: this.deps.demoted?.(request.names),
          challengeFailed: this.deps.challengeFailed,
          // RFC 9773 §5: only to a CA that has ARI (another may refuse the field)
          replaces: typeof directory.renewalInfo === 'string' ? request.replaces : undefined,
          profile,
          preferredChain: this.options.preferredChain,
          poll: this.options.poll,
          signal,
          logger: this.deps.logger,
        })
        return { certificate: result.certificate }
      } catch (err) {
        if (attempt === 1 && isAcmeError(err) && err.problemType?.endsWith(':accountDoesNotExist')) {
          account = await replaceAccount({ ...this.ctx, signal }, account)
          continue
        }
        // acme-client throws plain Errors for answers it cannot use (no Location, no order link, ...)
        if (!isAcmeError(err)) throw new AcmeError(ErrorCodes.CA_BAD_RESPONSE, `the CA's answer could not be used: ${(err as Error)?.message ?? String(err)}`, { cause: err, retryable: true })
        throw err
      }
    }
  }

  async renewalInfo (bundle: CertificateBundle, signal?: AbortSignal): Promise<RenewalInfo | null> {
    const base = (await this.directory(signal)).renewalInfo
    if (typeof base !== 'string' || !bundle.certId) return null
    const url = `${base.replace(/\/$/, '')}/${bundle.certId}`
    const res = await withRetries(this.options.retry ?? DEFAULT_RETRY, this.transport, signal, this.deps.logger, `GET ${url}`, async () => {
      const r = await this.transport.request(url, 'GET', undefined, signal)
      if (r.status !== 200) throw problemError(r, 'GET', url)
      return r
    })
    return parseRenewalInfo(res.data, res.headers['retry-after'])
  }

  async revoke (bundle: CertificateBundle, reason = 0): Promise<void> {
    const account = await this.account()
    try {
      await clientFor(this.ctx, account.accountKey, account.accountUrl).revokeCertificate(bundle.certificate, { reason })
    } catch (err) {
      // revoked before (elsewhere, or by a first try whose answer was lost): what was asked for holds
      if (!(isAcmeError(err) && err.problemType?.endsWith(':alreadyRevoked'))) throw err
      this.deps.logger.info({ serial: bundle.serial }, 'the certificate was already revoked')
    }
  }

  /** Rolls the account key over at the CA and in storage (RFC 8555 §7.3.5). */
  async rolloverAccountKey (): Promise<StoredAccount> {
    return rolloverAccountKey(this.ctx, await this.account())
  }

  async close (): Promise<void> {
    this.transport.close()
  }
}
