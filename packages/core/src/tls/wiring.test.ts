// Runs the wiring recipe at the top of context-cache.ts against real sockets, so the plugin
// can rely on it: ALPNCallback runs before SNICallback, and `this` is the TLSSocket in both.
import { X509Certificate } from 'node:crypto'
import type tls from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ACME_TLS_ALPN_PROTOCOL, createTlsAlpnChallenge, tlsAlpnServername, type TlsAlpnChallenge } from '../challenges/tls-alpn-01.js'
import type { Identifier } from '../names.js'
import { testCa, type TestLeaf } from '../../test/certs.js'
import { handshake, startTlsServer } from '../../test/tls-peer.js'
import { ContextCache } from './context-cache.js'

const KEY_AUTHORIZATION = 'token_1.thumbprint-2'
const kAcmeTls = Symbol('acme-tls')
type FlaggedSocket = tls.TLSSocket & { [kAcmeTls]?: boolean }

const ca = testCa()
let site: TestLeaf
let other: TestLeaf
const cache = new ContextCache()
/** pending challenges by the SNI the CA will send */
const challenges = new Map<string, TlsAlpnChallenge>()
const closers: Array<() => Promise<void>> = []

beforeAll(async () => {
  site = ca.issue(['site.test'])
  other = ca.issue(['other.test'])
  for (const cert of [site, other]) cache.set(cert.names[0] as string, cert)
  for (const identifier of [{ type: 'dns', value: 'site.test' }, { type: 'ip', value: '127.0.0.1' }] satisfies Identifier[]) {
    challenges.set(tlsAlpnServername(identifier), await createTlsAlpnChallenge(identifier, KEY_AUTHORIZATION))
  }
})
afterEach(async () => { for (const close of closers.splice(0)) await close() })
afterAll(() => ca.cleanup())

function selectProtocol (socket: FlaggedSocket, servername: string, protocols: string[], withSni: boolean): string | undefined {
  const challenge = challenges.get(servername)
  if (challenge !== undefined && protocols.includes(ACME_TLS_ALPN_PROTOCOL)) {
    if (withSni) socket[kAcmeTls] = true
    else socket.setKeyCert(challenge.context)
    return ACME_TLS_ALPN_PROTOCOL
  }
  return ['h2', 'http/1.1'].find((protocol) => protocols.includes(protocol))
}

async function serve (withSni: boolean) {
  const started = await startTlsServer({
    ...cache.secureContextOptions('site.test'),
    ALPNCallback (this: FlaggedSocket, { servername, protocols }) {
      return selectProtocol(this, servername, protocols, withSni)
    },
    ...(withSni && {
      SNICallback (this: FlaggedSocket, name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) {
        cb(null, this[kAcmeTls] === true ? challenges.get(name)?.context : cache.lookup(name))
      },
    }),
  })
  closers.push(started.close)
  return started.port
}

describe.each([['with SNICallback (acmeHttps)', true], ['without SNICallback (plain https + setKeyCert)', false]])('wiring %s', (_, withSni) => {
  it('shows the challenge certificate only to an acme-tls/1 client for a pending name', async () => {
    const port = await serve(withSni)
    const challenge = challenges.get('site.test') as TlsAlpnChallenge
    const acmeClient = await handshake(port, { servername: 'site.test', ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL] })
    acmeClient.socket.end()
    expect(acmeClient.alpn).toBe(ACME_TLS_ALPN_PROTOCOL)
    expect(acmeClient.peer.raw.equals(new X509Certificate(challenge.certificate).raw)).toBe(true)

    for (const ALPNProtocols of [['h2', 'http/1.1'], undefined]) {
      const browser = await handshake(port, { servername: 'site.test', ALPNProtocols, ca: ca.root })
      browser.socket.end()
      expect(browser.authorized, browser.authorizationError).toBe(true)
      expect(browser.serial).toBe(site.serial)
      expect(browser.alpn).toBe(ALPNProtocols === undefined ? false : 'h2')
    }
  })

  it('refuses an acme-tls/1 client when no challenge is pending for its name, and serves others as usual', async () => {
    const port = await serve(withSni)
    // ALPNCallback returning undefined makes Node send a no_application_protocol alert
    await expect(handshake(port, { servername: 'other.test', ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL] }))
      .rejects.toThrow(/no application protocol/)
    const seen = await handshake(port, { servername: 'other.test', ALPNProtocols: ['http/1.1'], ca: ca.root })
    seen.socket.end()
    expect(seen.alpn).toBe('http/1.1')
    expect(seen.serial).toBe(withSni ? other.serial : site.serial)
  })

  it('answers an IP identifier under its reverse-DNS SNI (RFC 8738)', async () => {
    const port = await serve(withSni)
    const seen = await handshake(port, { servername: '1.0.0.127.in-addr.arpa', ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL] })
    seen.socket.end()
    expect(seen.alpn).toBe(ACME_TLS_ALPN_PROTOCOL)
    expect(seen.peer.subjectaltname).toBe('IP Address:127.0.0.1')
  })
})
