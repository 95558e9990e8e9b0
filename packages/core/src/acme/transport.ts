import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import { AcmeError, ErrorCodes } from '../errors.js'
import type { Logger } from '../logger.js'

/** The response shape acme-client's HttpClient expects from axios. */
export interface TransportResponse {
  status: number
  headers: Record<string, string>
  data: any
}

export interface TransportOptions {
  /** extra trust for the CA's HTTPS endpoint (PEM), added to Node's root store */
  caBundle?: string | string[]
  /** per-request timeout in ms (default 30 000) */
  timeoutMs?: number
  userAgent?: string
  logger?: Logger
}

/** OpenSSL / Node error codes that mean "this CA's certificate is not trusted": retrying cannot help. */
const TLS_TRUST_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER',
])

/**
 * HTTPS to one CA, owned by one manager: its own agent and trust (never acme-client's
 * process-global axios), a pool of Replay-Nonces, and a gate that holds every request until
 * the CA's last Retry-After has passed.
 */
export class Transport {
  #agent?: https.Agent
  private readonly httpAgent = new http.Agent({ keepAlive: true })
  private readonly timeoutMs: number
  private readonly userAgent: string
  private readonly nonces: string[] = []
  private notBefore = 0

  constructor (private readonly opts: TransportOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000
    this.userAgent = opts.userAgent ?? 'fastify-acme'
  }

  /**
   * The HTTPS agent, made on first use. Extra trust is one SecureContext built once (Node's root
   * store plus caBundle): given as `ca`, Node would parse all ~140 roots again for every new
   * connection (~10 ms each).
   */
  get agent (): https.Agent {
    if (!this.#agent) {
      const extra = [this.opts.caBundle ?? []].flat().filter(Boolean)
      this.#agent = new https.Agent({
        keepAlive: true,
        ...(extra.length > 0 ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, ...extra] }) } : {}),
      })
    }
    return this.#agent
  }

  /** Holds later requests until `until` (a CA's Retry-After). */
  deferUntil (until: Date): void {
    this.notBefore = Math.max(this.notBefore, until.getTime())
  }

  takeNonce (): string | undefined {
    return this.nonces.pop()
  }

  /**
   * Drops a nonce that is about to be signed into a request. Every response's nonce is pooled,
   * but acme-client also uses some directly (the one its HEAD newNonce returned, the one of a
   * badNonce answer it retries with): without this, the pool would hand them out a second time.
   */
  forgetNonce (nonce: string): void {
    const i = this.nonces.indexOf(nonce)
    if (i !== -1) this.nonces.splice(i, 1)
  }

  async request (url: string, method: string, body?: unknown, signal?: AbortSignal): Promise<TransportResponse> {
    // a 429 answered while this request slept may have moved the gate further: look again
    for (let wait = this.notBefore - Date.now(); wait > 0; wait = this.notBefore - Date.now()) await sleep(wait, signal)
    const payload = body === undefined || body === null ? undefined : JSON.stringify(body)
    const res = await this.send(url, method.toUpperCase(), payload, signal)
    const nonce = res.headers['replay-nonce']
    if (nonce) {
      this.nonces.push(nonce)
      if (this.nonces.length > 32) this.nonces.shift()
    }
    return res
  }

  close (): void {
    this.#agent?.destroy()
    this.httpAgent.destroy()
  }

  private send (url: string, method: string, payload: string | undefined, signal?: AbortSignal): Promise<TransportResponse> {
    const isHttps = url.startsWith('https:')
    return new Promise((resolve, reject) => {
      const req = (isHttps ? https : http).request(url, {
        method,
        agent: isHttps ? this.agent : this.httpAgent,
        signal,
        timeout: this.timeoutMs,
        headers: {
          'user-agent': this.userAgent,
          ...(payload === undefined ? {} : { 'content-type': 'application/jose+json', 'content-length': Buffer.byteLength(payload) }),
        },
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', (err) => reject(networkError(url, err)))
        res.on('end', () => {
          const headers: Record<string, string> = {}
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v
          const text = Buffer.concat(chunks).toString('utf8')
          try {
            resolve({ status: res.statusCode ?? 0, headers, data: parseBody(headers['content-type'] ?? '', text) })
          } catch (cause) {
            reject(new AcmeError(ErrorCodes.CA_BAD_RESPONSE, `${method} ${url} returned ${res.statusCode} with unreadable JSON`, { cause, status: res.statusCode, retryable: true }))
          }
        })
      })
      req.on('timeout', () => req.destroy(Object.assign(new Error(`timed out after ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })))
      req.on('error', (err) => reject(signal?.aborted ? abortError(signal) : networkError(url, err)))
      req.end(payload)
    })
  }
}

function parseBody (contentType: string, text: string): unknown {
  if (/json/i.test(contentType)) return text === '' ? null : JSON.parse(text)
  return text
}

function networkError (url: string, err: NodeJS.ErrnoException): AcmeError {
  const code = err.code ?? ''
  if (TLS_TRUST_ERRORS.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_CERT')) {
    return new AcmeError(ErrorCodes.CA_TLS, `cannot trust the CA at ${new URL(url).origin}: ${err.message} (${code}); pass its CA certificate as caBundle`, { cause: err })
  }
  return new AcmeError(ErrorCodes.CA_UNREACHABLE, `cannot reach the CA at ${new URL(url).origin}: ${err.message}${code ? ` (${code})` : ''}`, { cause: err, retryable: true })
}

export function abortError (signal: AbortSignal): AcmeError {
  return new AcmeError(ErrorCodes.ABORTED, 'aborted', { cause: signal.reason })
}

/** Resolves after `ms`, or rejects with ERR_ACME_ABORTED when `signal` aborts first. */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const onAbort = () => { clearTimeout(timer); reject(abortError(signal!)) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
