import type acme from 'acme-client'
import { createPublicKey } from 'node:crypto'
import { Module, createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { AcmeError, ErrorCodes } from '../errors.js'
import type { Logger } from '../logger.js'
import { sleep, type Transport, type TransportResponse } from './transport.js'

/** Problem types after which the same request cannot succeed by being repeated. */
const PERMANENT_PROBLEMS = new Set([
  'unauthorized', 'malformed', 'rejectedIdentifier', 'unsupportedIdentifier', 'caa', 'badCSR',
  'badPublicKey', 'badSignatureAlgorithm', 'badRevocationReason', 'alreadyRevoked', 'invalidContact',
  'unsupportedContact', 'externalAccountRequired', 'userActionRequired', 'accountDoesNotExist',
  'orderNotReady', 'invalidProfile', 'alreadyReplaced', 'incorrectResponse', 'compound', 'dns', 'connection', 'tls',
])

/** How an ACME request is retried inside one operation (longer waits go back to the scheduler). */
export interface RetryPolicy {
  /** attempts per request, first included (default 5) */
  attempts: number
  /** first backoff step in ms, doubled each time (default 500) */
  baseDelayMs: number
  /** a Retry-After longer than this is not waited out in-request but thrown (default 60 s) */
  maxInlineWaitMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxInlineWaitMs: 60_000 }

export interface ClientInit {
  directoryUrl: string
  /** PEM account key */
  accountKey: string
  accountUrl?: string
  eab?: { kid: string, hmacKey: string }
  transport: Transport
  retry?: RetryPolicy
  signal?: AbortSignal
  logger: Logger
  /** a directory already fetched, so each short-lived client need not fetch it again */
  directory?: Record<string, unknown>
}

/** acme-client's HttpClient and AcmeApi, which the Client keeps in `http` and `api` (not typed). */
interface HttpClientInternals {
  request (url: string, method: string, opts?: { data?: unknown }): Promise<TransportResponse>
  getNonce (): Promise<string>
  getResourceUrl (resource: string): Promise<string>
  signedRequest (url: string, payload: unknown, opts: { kid?: string | null, includeExternalAccountBinding?: boolean }): Promise<TransportResponse>
  directoryCache: Record<string, unknown> | null
  directoryTimestamp: number
}
interface ApiInternals {
  getAccountUrl (): string
  apiRequest (url: string, payload: unknown, validStatusCodes?: number[], opts?: { includeJwsKid?: boolean, includeExternalAccountBinding?: boolean }): Promise<TransportResponse>
}
export interface InternalClient extends acme.Client {
  http: HttpClientInternals
  api: ApiInternals
}

/**
 * An acme-client Client whose HTTP goes through our per-manager Transport. acme-client keeps
 * the protocol (JWS signing, badNonce retries, the RFC 8555 calls); we replace only the wire:
 * trust per manager, nonces from a pool, AbortSignal, fail-fast TLS errors, coded problems,
 * and retries that re-sign with a fresh nonce and obey Retry-After (acme-client's own axios
 * retries re-send the same nonce, acme-client#103, and sleep 75 s on TLS errors).
 * Pinned to acme-client 5.4's internals (`http`, `api`); the Pebble tests cover every path.
 */
export function createClient (init: ClientInit): InternalClient {
  const { Client } = loadAcmeClient()
  const client = new Client({
    directoryUrl: init.directoryUrl,
    accountKey: init.accountKey,
    accountUrl: init.accountUrl,
    externalAccountBinding: init.eab,
  }) as InternalClient
  installTransport(client, init)
  return client
}

type AcmeClientClass = typeof acme.Client
let clientClass: AcmeClientClass | undefined

/**
 * acme-client's Client class, loaded when the first ACME client is made, so that apps using only
 * the local CA never pay for it. Only its protocol modules are loaded: its `crypto` module (which
 * loads @peculiar/x509 and its ASN.1 stack) and its `axios` module (we replace the wire) are
 * stood in for while the Client loads, and load for real only if a path we do not use calls
 * them. That is ~110 of the ~150 ms it takes in a cold process. The two functions the protocol
 * calls are the same code as acme-client 5.4's.
 */
export function loadAcmeClient (): { Client: AcmeClientClass } {
  if (clientClass) return { Client: clientClass }
  const require = createRequire(import.meta.url)
  const clientPath = require.resolve('acme-client/src/client.js')
  const cryptoPath = join(dirname(clientPath), 'crypto', 'index.js')
  const axiosPath = join(dirname(clientPath), 'axios.js')
  const real = (path: string) => require(path) as Record<string, (...args: unknown[]) => unknown>
  const lazy = (path: string, name: string) => (...args: unknown[]) => real(path)[name]!(...args)
  const stand: Record<string, unknown> = {
    // http.js: the JWS header's jwk, keys sorted
    getJwk (keyPem: string | Buffer) {
      const jwk = createPublicKey(keyPem).export({ format: 'jwk' }) as Record<string, unknown>
      return Object.fromEntries(Object.keys(jwk).sort().map((k) => [k, jwk[k]]))
    },
    // client.js: finalize (CSR) and revoke (certificate) bodies
    getPemBodyAsB64u (pem: string | Buffer) {
      const body = /-----BEGIN [^-]+-----([^-]*)-----END [^-]+-----/.exec(pem.toString())?.[1]
      if (body === undefined) throw new Error('Unable to parse PEM body from string')
      return Buffer.from(body.replace(/\s/g, ''), 'base64').toString('base64url')
    },
  }
  for (const name of ['readCertificateInfo', 'splitPemChain', 'readCsrDomains', 'isAlpnCertificateAuthorizationValid']) stand[name] = lazy(cryptoPath, name)
  const stands = new Map<string, unknown>([
    [cryptoPath, stand],
    [axiosPath, new Proxy({}, { get: (_, key) => real(axiosPath)[key as string] })],
  ])
  const installed: string[] = []
  for (const [path, exports] of stands) {
    if (require.cache[path]) continue // already loaded for real (the app uses acme-client itself)
    const module = new Module(path)
    Object.assign(module, { filename: path, loaded: true, exports })
    require.cache[path] = module
    installed.push(path)
  }
  try {
    clientClass = require(clientPath) as AcmeClientClass
  } finally {
    for (const path of installed) delete require.cache[path]
  }
  return { Client: clientClass }
}

/** Wires an acme-client HttpClient/AcmeApi pair to the transport (also after a key rollover). */
export function installTransport (client: { http: HttpClientInternals, api: ApiInternals }, init: ClientInit): void {
  const { transport, signal, logger } = init
  const retry = init.retry ?? DEFAULT_RETRY
  const http = client.http
  if (init.directory) {
    http.directoryCache = init.directory
    http.directoryTimestamp = Math.floor(Date.now() / 1000)
  }

  // GET and HEAD are idempotent: retried here. POSTs are retried in apiRequest, re-signed.
  http.request = async (url, method, opts = {}) => {
    if (method.toLowerCase() === 'post') {
      const nonce = nonceOf(opts.data)
      if (nonce) transport.forgetNonce(nonce)
      return transport.request(url, method, opts.data, signal)
    }
    return withRetries(retry, transport, signal, logger, `${method.toUpperCase()} ${url}`, async () => {
      const res = await transport.request(url, method, undefined, signal)
      if (res.status >= 400) throw problemError(res, method.toUpperCase(), url)
      return res
    })
  }

  const fetchNonce = http.getNonce.bind(http)
  http.getNonce = async () => transport.takeNonce() ?? fetchNonce()

  client.api.apiRequest = async (url, payload = null, validStatusCodes = [], opts = {}) => {
    const { includeJwsKid = true, includeExternalAccountBinding = false } = opts
    return withRetries(retry, transport, signal, logger, `POST ${url}`, async () => {
      const kid = includeJwsKid ? client.api.getAccountUrl() : null
      const res = await http.signedRequest(url, payload, { kid, includeExternalAccountBinding })
      if (validStatusCodes.length > 0 && !validStatusCodes.includes(res.status)) throw problemError(res, 'POST', url)
      return res
    })
  }
}

/** The nonce in a JWS's protected header. */
function nonceOf (jws: unknown): string | undefined {
  const encoded = (jws as { protected?: unknown } | null)?.protected
  if (typeof encoded !== 'string') return undefined
  try {
    const nonce = (JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as { nonce?: unknown }).nonce
    return typeof nonce === 'string' ? nonce : undefined
  } catch {
    return undefined
  }
}

/** Runs `attempt` until it succeeds, a permanent error occurs, or the attempts run out. */
export async function withRetries<T> (
  policy: RetryPolicy, transport: Transport, signal: AbortSignal | undefined, logger: Logger, what: string, attempt: () => Promise<T>
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt()
    } catch (err) {
      if (!(err instanceof AcmeError) || !err.retryable) throw err
      const backoff = policy.baseDelayMs * 2 ** (n - 1)
      const wait = err.retryAfter ? Math.max(err.retryAfter.getTime() - Date.now(), 0) : backoff
      // the CA's Retry-After holds every request to it, this one retried or not (attempts used
      // up); a longer one than we wait in-request goes to the scheduler's per-name backoff
      if (err.retryAfter && wait <= policy.maxInlineWaitMs) transport.deferUntil(err.retryAfter)
      if (n >= policy.attempts || wait > policy.maxInlineWaitMs) throw err
      logger.debug({ err: err.message, attempt: n, waitMs: wait }, `retrying ${what}`)
      await sleep(err.retryAfter ? 0 : wait, signal)
    }
  }
}

/** Turns a non-success CA response into a coded AcmeError carrying the RFC 8555 problem. */
export function problemError (res: TransportResponse, method: string, url: string): AcmeError {
  const data = (res.data && typeof res.data === 'object') ? res.data as Record<string, any> : undefined
  const problemType = typeof data?.type === 'string' ? data.type : undefined
  const short = problemType?.replace('urn:ietf:params:acme:error:', '')
  const retryAfter = parseRetryAfter(res.headers['retry-after'])
  // a subproblem's detail often leaves out its name (Let's Encrypt's do): put it in front
  const subproblems = Array.isArray(data?.subproblems)
    ? data.subproblems.map((p: any) => p?.detail && (typeof p.identifier?.value === 'string' ? `${p.identifier.value}: ${p.detail}` : p.detail))
    : []
  // userActionRequired (new terms of service, ...): the page to visit
  const instance = short === 'userActionRequired' && typeof data?.instance === 'string' ? ` (see ${data.instance})` : ''
  const detail = ([data?.detail, ...subproblems].filter(Boolean).join('; ') || (typeof res.data === 'string' ? res.data.slice(0, 200) : '')) + instance
  const message = `${method} ${url} failed: ${res.status}${short ? ` ${short}` : ''}${detail ? `: ${detail}` : ''}`
  if (!data && res.status < 500 && res.status !== 429) {
    return new AcmeError(ErrorCodes.CA_BAD_RESPONSE, message, { status: res.status })
  }
  const retryable = res.status === 429 || res.status >= 500 || short === 'badNonce' || short === 'rateLimited' ||
    short === 'serverInternal' || (!PERMANENT_PROBLEMS.has(short ?? '') && res.status >= 500)
  const code = short === 'rateLimited' || res.status === 429
    ? ErrorCodes.RATE_LIMITED
    : short === 'externalAccountRequired' ? ErrorCodes.EAB_REQUIRED : ErrorCodes.CA_PROBLEM
  return new AcmeError(code, message, { status: res.status, problemType, retryAfter, retryable })
}

/** Parses Retry-After: delta-seconds or an HTTP date. */
export function parseRetryAfter (value: string | undefined, now = Date.now()): Date | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return new Date(now + seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : new Date(date)
}
