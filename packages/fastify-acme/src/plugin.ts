import {
  AcmeError, CertificateManager, ErrorCodes, MANAGER_OPTION_NAMES, assertKnownOptions, booleanOption, encryptedStorage, invalidOption, objectOption, parseEncryptionKeys,
  type CertificateManagerOptions, type Dns01Config, type Storage,
} from '@fastify-acme/core'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Server as HttpServer } from 'node:http'
import path from 'node:path'
import tls from 'node:tls'
import { parseDomains, readAcmeEnv, readCaBundle } from './env.js'
import { startHttp01Listener, type Http01ListenerOptions } from './http01-listener.js'
import { bindingOf } from './https.js'
import { registerMetricsRoute, resolveMetricsRoute, withMetrics, type FastifyAcmeManager, type MetricsRouteOptions } from './metrics-route.js'
import { SecureContextReloader } from './reload.js'
import { registerStatusRoute, resolveStatusPage, type StatusPageOptions } from './status-route.js'

/** Options of the fastify-acme plugin. Every CertificateManager option applies too. */
export interface FastifyAcmeOptions extends Omit<CertificateManagerOptions, 'storage' | 'challenges' | 'logger'> {
  /**
   * The certificates to manage: a list of names is one certificate; a list of lists is several
   * (`[['a.com', 'www.a.com'], ['b.com']]`). Default: ACME_DOMAINS, else none (on-demand only).
   */
  domains?: string[] | string[][]
  /** Default: ACME_STORAGE, else fsStorage({ dir: './acme-data' }) in the working directory. */
  storage?: Storage
  challenges?: {
    /**
     * HTTP-01: the route `/.well-known/acme-challenge/:token` on the app, plus the plugin's own
     * listener (default port 80 on '::'; `port: false` for the route alone; `false` disables HTTP-01;
     * `true` is the defaults).
     */
    http01?: boolean | { port?: number | false, host?: string, redirect?: boolean }
    /** TLS-ALPN-01 in-process; needs `Fastify({ https: acmeHttps() })` (default true when it is) */
    tlsAlpn01?: boolean
    /** DNS-01 through a provider, or `{ provider, resolvers, propagationTimeoutMs, ... }` (needed for wildcards; default off) */
    dns01?: Dns01Config
    order?: CertificateManagerOptions['challenges'] extends infer C ? C extends { order?: infer O } ? O : never : never
  }
  /** Read ACME_* environment variables (default true); pass an object to read from it instead of process.env. */
  env?: boolean | Record<string, string | undefined>
  /** How long close() waits for orders in flight before aborting them, in ms (default 10 000). */
  closeTimeoutMs?: number
  /** Serve Prometheus metrics: true for GET /metrics, or { path, onRequest }. Default off (`app.acme.metrics()` always works). */
  metrics?: boolean | MetricsRouteOptions
  /** Serve the HTML status page behind a required auth hook: { onRequest, path = '/.acme/status' }. Default off. */
  statusPage?: StatusPageOptions | false
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The certificate manager of fastify-acme: list, obtain, renew, revoke, events, metrics(). */
    acme: FastifyAcmeManager
  }
}

const CHALLENGE_ROUTE = '/.well-known/acme-challenge/:token'

/** The plugin's own options, beside CertificateManager's (whose `logger` is Fastify's). */
const PLUGIN_OPTION_NAMES = ['domains', 'challenges', 'env', 'closeTimeoutMs', 'metrics', 'statusPage']

export const fastifyAcmePlugin: FastifyPluginAsync<FastifyAcmeOptions> = async (fastify, options) => {
  if (fastify.hasDecorator('acme')) {
    throw new AcmeError(ErrorCodes.ALREADY_REGISTERED, 'fastify-acme is already registered on this instance')
  }
  const log = fastify.log.child({ plugin: 'fastify-acme' })
  const metricsRoute = resolveMetricsRoute(options?.metrics)
  const statusPage = resolveStatusPage(options?.statusPage)
  const { opts, fromEnv } = await withEnvironment(fastify, options ?? {})
  const binding = bindingOf(fastify.server)
  // before anything is opened: a refused registration must leave no connection behind
  if (binding?.manager) throw new AcmeError(ErrorCodes.ALREADY_REGISTERED, 'these acmeHttps() options are already bound to another fastify-acme registration')
  // (prefix, logLevel and logSerializers are Fastify's own register() options)
  const { domains, storageUrl: _, storageKeys: _keys, closeTimeoutMs = 10_000, env: __, challenges, metrics: ___, statusPage: ____, prefix: _p, logLevel: _l, logSerializers: _s, ...managerOptions } = opts as ResolvedPluginOptions & Record<'prefix' | 'logLevel' | 'logSerializers', unknown>
  assertKnownOptions(managerOptions, [...MANAGER_OPTION_NAMES.filter((n) => n !== 'logger'), ...PLUGIN_OPTION_NAMES])
  if (!Number.isSafeInteger(closeTimeoutMs) || closeTimeoutMs < 0) invalidOption('closeTimeoutMs', closeTimeoutMs, 'a non-negative integer (ms)')
  if (!(fastify.server instanceof tls.Server)) {
    log.warn('the server is not HTTPS: certificates are obtained but not served (use Fastify({ https: acmeHttps() }))')
  }
  const dns01Only = opts.challenges?.dns01 !== undefined
  const tlsAlpn01 = binding !== undefined && (dns01Only ? opts.challenges?.tlsAlpn01 === true : opts.challenges?.tlsAlpn01 !== false)
  if (opts.challenges?.tlsAlpn01 === true && !binding) {
    log.warn('challenges.tlsAlpn01 needs Fastify({ https: acmeHttps() }); TLS-ALPN-01 is off')
  }
  // on-demand names arrive through SNICallback, which only acmeHttps() installs: nothing would ever ask allow()
  if (opts.onDemand !== undefined && !binding) {
    throw new AcmeError(ErrorCodes.INVALID_OPTION, 'option "onDemand" needs the server built with Fastify({ https: acmeHttps() }): on this server no handshake would ever reach it')
  }
  const ownsStorage = opts.storage === undefined
  if (!ownsStorage && opts.storageKeys) log.warn('ACME_STORAGE_KEYS is ignored: the code passes its own storage (wrap it in encryptedStorage())')
  // what checks client certificates must be in each certificate's context too (OpenSSL uses the
  // one SNI chose), also when spread into `https` beside acmeHttps() instead of given to it
  const tlsOptions = { ...(binding ? clientVerification(fastify.server as unknown as tls.Server) : {}), ...binding?.tls, ...managerOptions.tls?.options }
  let http01: ReturnType<typeof resolveHttp01>
  let storage: Storage | undefined
  let manager: CertificateManager
  try {
    http01 = resolveHttp01(opts.challenges)
    storage = opts.storage ?? await defaultStorage(opts.storageUrl, opts.storageKeys)
    manager = new CertificateManager({
      ...managerOptions,
      storage,
      logger: log,
      challenges: {
        http01: http01 !== false,
        tlsAlpn01,
        ...(challenges?.dns01 ? { dns01: challenges.dns01 } : {}),
        ...(challenges?.order ? { order: challenges.order } : {}),
      },
      // acmeHttps({ tls }) reaches each certificate's context too (`ca` for client certificates is checked there)
      tls: { ...managerOptions.tls, options: tlsOptions },
    })
    // fastify-plugin shares the parent's context, prefix included: the CA asks at the root path
    // (the local CA asks nothing)
    if (http01 !== false && manager.usesAcme && fastify.prefix !== '') {
      await manager.close()
      throw new AcmeError(ErrorCodes.INVALID_OPTION, `fastify-acme is registered in a context with the prefix "${fastify.prefix}", so its HTTP-01 route would be ${fastify.prefix}${CHALLENGE_ROUTE}, where no CA looks: register it on the root instance (app.register(fastifyAcme, ...)), or turn HTTP-01 off with challenges: { http01: false }`)
    }
    if (domains) manager.add(domains)
  } catch (err) {
    if (ownsStorage) await storage?.close?.().catch(() => {}) // a refused registration leaves no connection open
    throw namingVariable(err, fromEnv)
  }
  fastify.decorate('acme', withMetrics(manager))
  if (metricsRoute) registerMetricsRoute(fastify, manager, metricsRoute)
  if (statusPage) registerStatusRoute(fastify, manager, statusPage)

  if (binding) {
    const { http2, https } = fastify.initialConfig as { http2?: boolean, https?: boolean | { allowHTTP1?: boolean } }
    const misfit = binding.fitProtocols(http2 === true, typeof https === 'object' && https.allowHTTP1 === true)
    if (misfit) log.warn(misfit)
    binding.attach(manager)
  }
  const reloader = fastify.server instanceof tls.Server
    ? new SecureContextReloader(fastify.server, manager, tlsOptions, log, binding !== undefined)
    : undefined
  // (a revoked default certificate is replaced by the next one, or taken out)
  if (reloader) for (const event of ['updated', 'revoked'] as const) manager.on(event, () => reloader.reload())

  if (http01 !== false) {
    fastify.get(CHALLENGE_ROUTE, async (request, reply) => {
      const { token } = request.params as { token: string }
      try {
        const body = await manager.respondHttp01(request.headers.host, token)
        return body === null ? reply.code(404).type('text/plain').send('not found') : reply.type('text/plain').send(body)
      } catch {
        return reply.code(400).type('text/plain').send('bad challenge request')
      }
    })
  }

  let listener: HttpServer | undefined
  fastify.addHook('onReady', async () => {
    // the local CA needs no challenge, so no port-80 listener (non-root development works as is)
    if (http01 !== false && http01.port !== false && manager.usesAcme) {
      const listenerOptions: Http01ListenerOptions = {
        port: http01.port,
        host: http01.host,
        redirect: http01.redirect,
        httpsPort: () => (fastify.server.address() as { port?: number } | null)?.port,
      }
      listener = await startHttp01Listener(manager, listenerOptions, log)
    }
  })
  fastify.addHook('onListen', async () => {
    manager.start().catch((err: Error) => log.error({ err: err.message }, 'certificate maintenance could not start'))
  })
  // before server.close(), which waits for every socket, those still in a handshake included
  fastify.addHook('preClose', async () => { binding?.close() })
  fastify.addHook('onClose', async () => {
    reloader?.close()
    binding?.detach()
    await manager.close({ timeoutMs: closeTimeoutMs })
    if (listener) await new Promise<void>((resolve) => { listener!.close(() => resolve()); listener!.closeAllConnections() })
    if (ownsStorage) await storage.close?.()
  })
}

type ResolvedPluginOptions = FastifyAcmeOptions & { storageUrl?: string, storageKeys?: string }

/** The server's own `ca` and `crl` (Node keeps the options a tls.Server was built with on it). */
function clientVerification (server: tls.Server): Pick<tls.SecureContextOptions, 'ca' | 'crl'> {
  const { ca, crl } = server as unknown as Pick<tls.SecureContextOptions, 'ca' | 'crl'>
  return { ...(ca !== undefined && ca !== null ? { ca } : {}), ...(crl !== undefined && crl !== null ? { crl } : {}) }
}

/** Like CertMagic, configuring DNS-01 means DNS-01 alone, unless another challenge is asked for. */
function http01Disabled (challenges: FastifyAcmeOptions['challenges']): boolean {
  return challenges?.http01 === false || (challenges?.dns01 !== undefined && challenges?.http01 === undefined)
}

/** challenges.http01 checked at registration: false (off), or the route and listener settings with their defaults. */
function resolveHttp01 (challenges: FastifyAcmeOptions['challenges']): false | { port: number | false, host: string, redirect: boolean } {
  if (http01Disabled(challenges)) return false
  const given = challenges?.http01 as unknown
  if (given !== undefined && given !== true && (typeof given !== 'object' || given === null)) {
    invalidOption('challenges.http01', given, 'a boolean or { port?, host?, redirect? }')
  }
  if (typeof given === 'object') assertKnownOptions(given, ['port', 'host', 'redirect'], 'challenges.http01.')
  const { port = 80, host = '::', redirect = true } = (typeof given === 'object' ? given : {}) as { port?: unknown, host?: unknown, redirect?: unknown }
  // server.listen() would take a non-numeric string as the path of a UNIX socket
  if (port !== false && (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535)) {
    invalidOption('challenges.http01.port', port, 'a port number (0-65535) or false')
  }
  if (typeof host !== 'string' || host === '') invalidOption('challenges.http01.host', host, 'a host name or IP address')
  if (typeof redirect !== 'boolean') invalidOption('challenges.http01.redirect', redirect, 'a boolean')
  return { port: port as number | false, host, redirect }
}

/** Code options win; the environment fills what they leave out (an option set to undefined is left out). */
async function withEnvironment (fastify: FastifyInstance, options: FastifyAcmeOptions): Promise<{ opts: ResolvedPluginOptions, fromEnv: Map<string, string> }> {
  if (typeof options !== 'object') invalidOption('options', options, 'an object')
  if (options.env !== undefined && options.env !== false && (typeof options.env !== 'object' || options.env === null)) {
    invalidOption('env', options.env, 'false or an object of variables')
  }
  // the user's own challenges, before they are rebuilt (a misspelt key or a string for a boolean kept its default)
  const challenges = objectOption('challenges', options.challenges, ['http01', 'tlsAlpn01', 'dns01', 'order'])
  booleanOption('challenges.tlsAlpn01', challenges.tlsAlpn01)
  const fromEnv = new Map<string, string>()
  if (options.env === false) return { opts: options, fromEnv }
  const env = await readAcmeEnv(fastify, typeof options.env === 'object' ? options.env : process.env)
  const code = defined(options)
  const http01 = options.challenges?.http01
  const envPort = env.ACME_HTTP_PORT !== undefined || env.ACME_HTTP_HOST !== undefined
  const fromEnvironment: Partial<ResolvedPluginOptions> = {
    ...(env.ACME_DOMAINS ? { domains: parseDomains(env.ACME_DOMAINS) } : {}),
    ...(env.ACME_EMAIL ? { email: env.ACME_EMAIL } : {}),
    ...(env.ACME_DIRECTORY_URL ? { directoryUrl: env.ACME_DIRECTORY_URL } : {}),
    ...(env.ACME_STORAGE ? { storageUrl: env.ACME_STORAGE } : {}),
    ...(env.ACME_STORAGE_KEYS ? { storageKeys: env.ACME_STORAGE_KEYS } : {}),
    ...(env.ACME_EAB_KID && env.ACME_EAB_HMAC_KEY ? { eab: { kid: env.ACME_EAB_KID, hmacKey: env.ACME_EAB_HMAC_KEY } } : {}),
    ...(env.ACME_CA_BUNDLE ? { caBundle: readCaBundle(env.ACME_CA_BUNDLE) } : {}),
    ...(env.ACME_TERMS_OF_SERVICE_AGREED !== undefined ? { termsOfServiceAgreed: env.ACME_TERMS_OF_SERVICE_AGREED } : {}),
    ...(env.ACME_KEY_TYPE ? { keyType: env.ACME_KEY_TYPE as FastifyAcmeOptions['keyType'] } : {}),
  }
  for (const key of Object.keys(fromEnvironment)) if (!(key in code)) fromEnv.set(key, ENV_NAMES[key]!)
  const opts: ResolvedPluginOptions = {
    ...fromEnvironment,
    ...code,
    challenges: {
      ...options.challenges,
      ...(!http01Disabled(options.challenges) && envPort
        ? { http01: { ...(env.ACME_HTTP_PORT !== undefined ? { port: env.ACME_HTTP_PORT } : {}), ...(env.ACME_HTTP_HOST ? { host: env.ACME_HTTP_HOST } : {}), ...(typeof http01 === 'object' ? defined(http01) : {}) } }
        : {}),
    },
  }
  if (envPort && !http01Disabled(options.challenges) && (typeof http01 !== 'object' || (http01.port === undefined && http01.host === undefined))) fromEnv.set('challenges.http01', 'ACME_HTTP_PORT / ACME_HTTP_HOST')
  return { opts, fromEnv }
}

/** The variable behind each option the environment can set, for errors about its value. */
const ENV_NAMES: Record<string, string> = {
  domains: 'ACME_DOMAINS',
  email: 'ACME_EMAIL',
  directoryUrl: 'ACME_DIRECTORY_URL',
  storageUrl: 'ACME_STORAGE',
  storageKeys: 'ACME_STORAGE_KEYS',
  eab: 'ACME_EAB_KID / ACME_EAB_HMAC_KEY',
  caBundle: 'ACME_CA_BUNDLE',
  termsOfServiceAgreed: 'ACME_TERMS_OF_SERVICE_AGREED',
  keyType: 'ACME_KEY_TYPE',
}

/** The object without its undefined values. */
function defined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/**
 * An error about a value that came from the environment names the variable too: the code never
 * mentions it, so `option "email"` alone would send the user looking in the wrong place.
 */
function namingVariable (err: unknown, fromEnv: Map<string, string>): unknown {
  if (!(err instanceof AcmeError) || fromEnv.size === 0) return err
  for (const [option, variable] of fromEnv) {
    const about = err.message.includes(`option "${option}`) || err.message.includes(`"${option}"`) ||
      (option === 'domains' && err.code === ErrorCodes.INVALID_IDENTIFIER) ||
      (option === 'storageUrl' && (err.message.startsWith('storage URL ') || err.message.includes('option "url"')))
    if (about) return new AcmeError(err.code, `${err.message} (set by ${variable})`, { cause: err })
  }
  return err
}

/** ACME_STORAGE (else ./acme-data), encrypted with ACME_STORAGE_KEYS when set. */
async function defaultStorage (url: string | undefined, keys: string | undefined): Promise<Storage> {
  const keyring = keys ? parseEncryptionKeys(keys) : undefined // before anything is opened
  let storage: Storage
  if (url) {
    const { storageFromUrl } = await import('@fastify-acme/storage-adapters')
    storage = await storageFromUrl(url)
  } else {
    const { fsStorage } = await import('@fastify-acme/storage-adapters/fs')
    storage = fsStorage({ dir: path.resolve('acme-data') })
  }
  return keyring ? encryptedStorage(storage, { keys: keyring }) : storage
}
