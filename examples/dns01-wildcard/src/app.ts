import { rfc2136Provider, type Rfc2136Options } from '@fastify-acme/core/dns/rfc2136'
import { fsStorage } from '@fastify-acme/storage-adapters/fs'
import Fastify from 'fastify'
import fastifyAcme, { acmeHttps, type FastifyAcmeOptions } from 'fastify-acme'

export interface AppOptions {
  /** e.g. 'example.com': the app gets one certificate for `*.example.com` and `example.com` */
  zone: string
  /** the primary DNS server and the TSIG key allowed to update `_acme-challenge` TXT records */
  dns: Rfc2136Options
  /** where to check that a TXT record is visible before the CA is asked (default: the zone's nameservers) */
  resolvers?: string[]
  /** where certificates and the account live */
  dataDir: string
  /** everything else fastify-acme takes: directoryUrl, email, caBundle, ... */
  acme?: Omit<FastifyAcmeOptions, 'domains' | 'storage' | 'challenges'>
  logger?: boolean
}

/**
 * A wildcard certificate: `*.<zone>` and the apex in one certificate, proven with DNS-01. The
 * plugin writes the TXT records with DNS UPDATE (RFC 2136, TSIG-signed), waits until they are
 * visible, lets the CA validate, and removes them, also when the order fails. No port 80.
 */
export async function buildApp (opts: AppOptions) {
  const app = Fastify({ https: acmeHttps(), logger: opts.logger ?? false })
  app.get('/', async (request) => ({ hello: request.hostname }))
  await app.register(fastifyAcme, {
    ...opts.acme,
    domains: [[`*.${opts.zone}`, opts.zone]],
    storage: fsStorage({ dir: opts.dataDir }),
    challenges: {
      // DNS-01 alone: no listener on port 80, and no TLS-ALPN-01 attempt for the apex
      http01: false,
      tlsAlpn01: false,
      dns01: {
        provider: rfc2136Provider(opts.dns),
        ...(opts.resolvers ? { resolvers: opts.resolvers } : {}),
      },
    },
  })
  return app
}
