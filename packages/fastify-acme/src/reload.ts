import type { CertificateManager, Logger } from '@fastify-acme/core'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { Server as TlsServer, SecureContextOptions } from 'node:tls'
import tls from 'node:tls'

/** The TLS settings Node keeps on a server after setSecureContext() (which resets what it is not given). */
const KEPT = ['ca', 'ciphers', 'crl', 'dhparam', 'ecdhCurve', 'honorCipherOrder', 'maxVersion', 'minVersion',
  'secureOptions', 'secureProtocol', 'sessionIdContext', 'sigalgs'] as const

const LISTEN_CHANNEL = 'tracing:net.server.listen:asyncEnd'

/**
 * Puts the default certificate into the server's own context through the public
 * server.setSecureContext(), on every binding. On a plain `Fastify({ https: {...} })` that is
 * the certificate every client gets; with acmeHttps() (whose server has no certificate of its
 * own, `certless`) it is the one clients without SNI get, and the TLS options are set on the
 * server at once, since versions and ciphers come from the server's context, not from the one
 * SNICallback returns. Listening on 'localhost' makes Fastify open a
 * second server (::1 beside 127.0.0.1) which `app.server` does not expose, so listening servers
 * are watched through Node's diagnostics channel and claimed when they share this app's
 * request handler. Each swap passes the server's current TLS settings, the plugin's `tls`
 * options, the new key and certificate, and the current ticket keys (so resumption survives).
 */
export class SecureContextReloader {
  readonly servers = new Set<TlsServer>()
  readonly #handler: unknown
  /** the chain last put into the servers (or refused by them): another name's renewal changes nothing */
  #applied?: string
  readonly #onListen = (message: unknown) => {
    const server = (message as { server?: unknown }).server
    if (server instanceof tls.Server && !this.servers.has(server) && server.listeners('request').includes(this.#handler as never)) {
      this.servers.add(server)
      this.#apply([server], this.#options())
    }
  }

  constructor (
    primary: TlsServer,
    private readonly manager: CertificateManager,
    private readonly tlsOptions: Omit<SecureContextOptions, 'key' | 'cert'>,
    private readonly log: Logger,
    private readonly certless = false
  ) {
    this.servers.add(primary)
    this.#handler = primary.listeners('request')[0]
    subscribe(LISTEN_CHANNEL, this.#onListen)
    if (certless && Object.keys(tlsOptions).length > 0) this.#apply([primary], undefined)
  }

  /**
   * Puts the default certificate into every server when it changed: a no-op until one is
   * served, and when an update was for another name. A chain Node refuses is logged once and
   * not tried again until the default certificate changes.
   */
  reload (): void {
    const options = this.#options()
    if (!options) {
      // the default certificate is gone (revoked) and none is left to take its place
      if (this.#applied === undefined) return
      this.#applied = undefined
      if (this.certless) this.#apply(this.servers, undefined)
      else this.log.error('the default certificate was revoked and no other is served: this server keeps serving its last one until another is obtained')
      return
    }
    if (options.cert === this.#applied) return
    this.#applied = options.cert as string
    this.#apply(this.servers, options)
  }

  #options (): SecureContextOptions | undefined {
    const name = this.manager.defaultName()
    return name ? this.manager.secureContextOptions(name) : undefined
  }

  /** Without a certificate to put in, only a certless server gets its TLS options (a plain one keeps its own certificate). */
  #apply (servers: Iterable<TlsServer>, options: SecureContextOptions | undefined): void {
    if (!options && !this.certless) return
    for (const server of servers) {
      try {
        server.setSecureContext({ ...kept(server), ...this.tlsOptions, ...options, ticketKeys: server.getTicketKeys() })
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'setSecureContext failed; the previous certificate stays')
      }
    }
  }

  close (): void {
    unsubscribe(LISTEN_CHANNEL, this.#onListen)
    this.servers.clear()
  }
}

function kept (server: TlsServer): SecureContextOptions {
  const out: Record<string, unknown> = {}
  for (const key of KEPT) {
    const value = (server as unknown as Record<string, unknown>)[key]
    if (value !== undefined && value !== null) out[key] = value
  }
  return out as SecureContextOptions
}
