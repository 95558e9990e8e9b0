import { assertKnownOptions, invalidOption, objectOption, refuseKeyMaterial, type BaseTlsOptions, type CertificateManager } from '@fastify-acme/core'
import { setMaxListeners } from 'node:events'
import type { SecureContext, SecureContextOptions, TLSSocket } from 'node:tls'

const ACME_TLS = 'acme-tls/1'
const kChallenge = Symbol('fastify-acme.acme-tls')

/** Options for acmeHttps(). */
export interface AcmeHttpsOptions {
  /**
   * TLS options for every certificate (ciphers, minVersion, ecdhCurve, `ca` for client
   * certificates, ...). They are set on the server and, through the plugin, on each
   * certificate's context (the plugin's `tls.options` win where both set one), and survive
   * every swap. Of the options spread into `https` beside acmeHttps(), the plugin carries only
   * `ca` and `crl` into each certificate's context.
   */
  tls?: BaseTlsOptions
  /**
   * Application protocols to offer, in preference order. Default: ['http/1.1'], or with
   * `Fastify({ http2: true })` ['h2'] (plus 'http/1.1' with `allowHTTP1`), as Node's own
   * HTTP/2 server offers. acme-tls/1 is handled by the plugin.
   */
  alpnProtocols?: string[]
}

/** The https options acmeHttps() returns: spread-able into Fastify({ https }). */
export interface AcmeHttpsServerOptions extends Omit<SecureContextOptions, 'key' | 'cert'> {
  SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void
  ALPNCallback: (info: { servername: string, protocols: string[] }) => string | undefined
}

/**
 * The link between one acmeHttps() options object and the plugin registered on the Fastify
 * instance built with it. Until a manager is attached, handshakes get the server default.
 */
export class HttpsBinding {
  manager?: CertificateManager
  readonly options: AcmeHttpsServerOptions
  /** acmeHttps({ alpnProtocols }), or the default fitProtocols() fits to the server */
  alpnProtocols: string[]
  readonly #protocolsGiven: boolean
  /**
   * acmeHttps({ tls }): the plugin merges them into every certificate's context, since OpenSSL
   * checks a client certificate against the `ca` of the context SNI chose, not the server's.
   */
  readonly tls: BaseTlsOptions
  /** aborted when the app starts closing (see close()) */
  #closing = new AbortController()

  constructor (opts: AcmeHttpsOptions = {}) {
    objectOption('acmeHttps', opts, undefined)
    assertKnownOptions(opts, ['tls', 'alpnProtocols'], 'acmeHttps.')
    this.tls = { ...objectOption('acmeHttps.tls', opts.tls, undefined) }
    refuseKeyMaterial('acmeHttps.tls', this.tls)
    const protocols = opts.alpnProtocols
    if (protocols !== undefined && (!Array.isArray(protocols) || protocols.length === 0 || protocols.some((p) => typeof p !== 'string' || p === ''))) {
      invalidOption('acmeHttps.alpnProtocols', protocols, "a non-empty list of protocol names, e.g. ['h2', 'http/1.1']")
    }
    this.alpnProtocols = protocols ?? ['http/1.1']
    this.#protocolsGiven = protocols !== undefined
    // `this` in both callbacks is the TLSSocket; ALPNCallback runs before SNICallback
    const binding = this
    this.options = {
      ...opts.tls,
      SNICallback (this: TLSSocket | undefined, servername, cb) {
        const manager = binding.manager
        if (!manager) return cb(null, undefined)
        // a name with no certificate is refused: the server's own context holds the default
        // certificate, for clients without SNI only (see SecureContextReloader)
        const serve = (ctx: SecureContext | undefined) => ctx ? cb(null, ctx) : cb(new Error(`no certificate for ${servername}`))
        if (this && (this as unknown as Record<symbol, boolean>)[kChallenge]) {
          manager.loadTlsAlpnContext(servername, binding.#closing.signal).then(serve, () => serve(undefined))
          return
        }
        const ctx = manager.secureContext(servername)
        if (ctx) return cb(null, ctx)
        // the wait ends when the app starts closing (see close())
        manager.loadSecureContext(servername, binding.#closing.signal).then(serve, () => serve(undefined))
      },
      ALPNCallback (this: TLSSocket | undefined, { servername, protocols: offered }) {
        // no SNI, as from every client that connects to an IP address: the certificate of the
        // address it reached, when one is managed and in memory (else the server's default)
        if (!servername && this) {
          const address = this.localAddress?.replace(/^::ffff:/, '')
          const ctx = address ? binding.manager?.secureContext(address) : undefined
          if (ctx) this.setKeyCert(ctx)
        }
        // (only with TLS-ALPN-01 on: otherwise anyone offering acme-tls/1 would cost a storage read)
        if (offered.includes(ACME_TLS) && binding.manager?.answersTlsAlpn01 && servername) {
          // a CA validating TLS-ALPN-01: SNICallback serves the challenge certificate
          if (this) (this as unknown as Record<symbol, boolean>)[kChallenge] = true
          return ACME_TLS
        }
        return binding.alpnProtocols.find((p) => offered.includes(p))
      },
    }
    bindings.set(this.options.ALPNCallback, this)
  }

  /**
   * Fits the offered protocols to the server Fastify built: HTTP/2 (`http2: true`) offers 'h2'
   * (and 'http/1.1' with `allowHTTP1`) unless acmeHttps() was given a list. Returns why a given
   * list does not fit, for a warning.
   */
  fitProtocols (http2: boolean, allowHTTP1: boolean): string | undefined {
    const given = this.alpnProtocols
    if (!this.#protocolsGiven) {
      if (http2) this.alpnProtocols = allowHTTP1 ? ['h2', 'http/1.1'] : ['h2']
      return undefined
    }
    if (http2 && !given.includes('h2')) return 'acmeHttps({ alpnProtocols }) leaves out \'h2\' on an HTTP/2 server: HTTP/2 clients cannot connect'
    if (!http2 && given.includes('h2')) return 'acmeHttps({ alpnProtocols }) offers \'h2\' on an HTTP/1.1 server (no http2: true): clients that pick it fail'
    return undefined
  }

  /** Attaches the plugin's manager: handshakes are served from it until detach(). */
  attach (manager: CertificateManager): void {
    this.manager = manager
    this.#closing = new AbortController()
    // one listener per handshake waiting for a certificate: as many as there are such handshakes
    setMaxListeners(0, this.#closing.signal)
  }

  /**
   * Refuses, at once, every handshake still waiting for a certificate, and any later one that
   * would have to wait (certificates in memory are still served). Run before server.close(),
   * which waits for every open socket: a handshake waiting for a CA that does not answer would
   * otherwise hold app.close() for up to handshakeTimeoutMs, whatever closeTimeoutMs says.
   */
  close (): void {
    this.#closing.abort()
  }

  detach (): void {
    this.manager = undefined
  }
}

const bindings = new WeakMap<object, HttpsBinding>()

/**
 * https options for Fastify whose SNICallback and ALPNCallback serve the certificates of the
 * fastify-acme plugin registered on that instance: many certificates by SNI, on-demand TLS,
 * and TLS-ALPN-01 in-process.
 *
 * ```ts
 * const app = Fastify({ https: acmeHttps() })
 * await app.register(fastifyAcme, { domains: ['example.com'], ... })
 * ```
 */
export function acmeHttps (opts: AcmeHttpsOptions = {}): AcmeHttpsServerOptions {
  return new HttpsBinding(opts).options
}

/**
 * The binding of a server built from acmeHttps() options, if it was. Node keeps the
 * ALPNCallback it was given on the server object, which is how the plugin finds its binding.
 */
export function bindingOf (server: unknown): HttpsBinding | undefined {
  const callback = (server as { ALPNCallback?: unknown } | null)?.ALPNCallback
  return typeof callback === 'function' ? bindings.get(callback) : undefined
}
