import { X509Certificate, createHash } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import acme from 'acme-client'
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCodes } from '../errors.js'
import { handshake, startTlsServer } from '../../test/tls-peer.js'
import { ACME_IDENTIFIER_OID, ACME_TLS_ALPN_PROTOCOL, createTlsAlpnChallenge, tlsAlpnServername } from './tls-alpn-01.js'

const KEY_AUTHORIZATION = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI'
const closers: Array<() => Promise<void>> = []
afterEach(async () => { for (const close of closers.splice(0)) await close() })

/** Serves `challenge` the way a CA reaches it: ALPN acme-tls/1, SNI = tlsAlpnServername(). */
async function fetchChallenge (identifier: { type: 'dns' | 'ip', value: string }) {
  const challenge = await createTlsAlpnChallenge(identifier, KEY_AUTHORIZATION)
  const { port, close } = await startTlsServer({ key: challenge.privateKey, cert: challenge.certificate, ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL] })
  closers.push(close)
  const seen = await handshake(port, { servername: tlsAlpnServername(identifier), ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL] })
  seen.socket.end()
  return { challenge, seen }
}

function acmeIdentifierOf (der: Buffer) {
  const extension = new x509.X509Certificate(der).getExtension(ACME_IDENTIFIER_OID)
  return { critical: extension?.critical, value: extension && Buffer.from(extension.value) }
}

describe('createTlsAlpnChallenge', () => {
  const digest = createHash('sha256').update(KEY_AUTHORIZATION).digest()

  it('builds an RFC 8737 certificate that acme-client accepts and serves it over acme-tls/1', async () => {
    const { challenge, seen } = await fetchChallenge({ type: 'dns', value: 'Challenge.Example.test' })
    expect(acme.crypto.isAlpnCertificateAuthorizationValid(challenge.certificate, KEY_AUTHORIZATION)).toBe(true)
    expect(acme.crypto.isAlpnCertificateAuthorizationValid(challenge.certificate, `${KEY_AUTHORIZATION}x`)).toBe(false)

    expect(seen.alpn).toBe(ACME_TLS_ALPN_PROTOCOL)
    expect(seen.peer.subjectaltname).toBe('DNS:challenge.example.test')
    expect(seen.peer.nistCurve).toBe('P-256')
    expect(acmeIdentifierOf(seen.peer.raw)).toEqual({ critical: true, value: Buffer.concat([Buffer.from([0x04, 0x20]), digest]) })
    const cert = new X509Certificate(challenge.certificate)
    expect(cert.verify(cert.publicKey)).toBe(true) // self-signed
    expect(new Date(cert.validFrom).getTime()).toBeLessThan(Date.now())
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 86_400_000)
  })

  it.each([
    ['127.0.0.1', 'IP Address:127.0.0.1', '1.0.0.127.in-addr.arpa'],
    ['2001:DB8::1', 'IP Address:2001:DB8:0:0:0:0:0:1',
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa'],
  ])('puts IP address %s in an iPAddress SAN and is found under its reverse name (RFC 8738)', async (ip, san, reverse) => {
    expect(tlsAlpnServername({ type: 'ip', value: ip })).toBe(reverse)
    const { challenge, seen } = await fetchChallenge({ type: 'ip', value: ip })
    expect(seen.peer.subjectaltname).toBe(san)
    expect(acmeIdentifierOf(seen.peer.raw).value?.subarray(2)).toEqual(digest)
    expect(acme.crypto.isAlpnCertificateAuthorizationValid(challenge.certificate, KEY_AUTHORIZATION)).toBe(true)
  })

  it('uses a fresh key for every challenge', async () => {
    const [a, b] = await Promise.all([1, 2].map(async () => await createTlsAlpnChallenge({ type: 'dns', value: 'a.test' }, KEY_AUTHORIZATION)))
    expect(a?.privateKey).not.toBe(b?.privateKey)
    expect(a?.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/)
  })

  it.each([
    [{ type: 'email', value: 'a@b.test' }, KEY_AUTHORIZATION, ErrorCodes.INVALID_IDENTIFIER],
    [{ type: 'dns', value: '10.0.0.1' }, KEY_AUTHORIZATION, ErrorCodes.INVALID_IDENTIFIER],
    [{ type: 'ip', value: 'a.test' }, KEY_AUTHORIZATION, ErrorCodes.INVALID_IDENTIFIER],
    [{ type: 'dns', value: '*.a.test' }, KEY_AUTHORIZATION, ErrorCodes.INVALID_IDENTIFIER],
    [{ type: 'dns', value: 'bad_label!.test' }, KEY_AUTHORIZATION, ErrorCodes.INVALID_IDENTIFIER],
    [null, KEY_AUTHORIZATION, ErrorCodes.INVALID_IDENTIFIER],
    [{ type: 'dns', value: 'a.test' }, 'no-dot', ErrorCodes.BAD_CHALLENGE_REQUEST],
    [{ type: 'dns', value: 'a.test' }, 'tok.en.x', ErrorCodes.BAD_CHALLENGE_REQUEST],
    [{ type: 'dns', value: 'a.test' }, 42, ErrorCodes.BAD_CHALLENGE_REQUEST],
  ])('refuses %j / %j with %s', async (identifier, keyAuthorization, code) => {
    await expect(createTlsAlpnChallenge(identifier as never, keyAuthorization as never)).rejects.toMatchObject({ code })
  })
})
