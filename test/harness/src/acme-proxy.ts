import { X509Certificate } from 'node:crypto'
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import https from 'node:https'
import { isIP, type AddressInfo, type Socket } from 'node:net'

/*
 * An HTTPS reverse proxy in front of Pebble 2.4 that adds what that Pebble lacks (ARI, RFC 9773, and
 * certificate profiles in the directory) and injects faults (429/5xx problems, dropped connections,
 * delays, arbitrary answers), logging every request with its decoded JWS.
 *
 * Requests are forwarded with the client's own Host header: Pebble builds its URLs from Host and checks
 * the JWS `url` against it, so its answers already name the proxy, and signatures made for proxy URLs
 * stay valid. The upstream origin is still rewritten in JSON bodies and Location/Link headers.
 *
 * `replaces` and `profile` in newOrder: Pebble 2.4 decodes the payload with Go's encoding/json, which
 * ignores unknown fields, so both are accepted and ignored (checked by acme-proxy.test.ts: the order works
 * and is created). Nothing is stripped (the JWS could not be re-signed anyway). Like a CA that supports
 * profiles, the proxy rejects a profile it does not advertise (400 invalidProfile, logged as injected) and
 * echoes `profile`/`replaces` in the order objects it relays. Profiles do not change the validity of what
 * Pebble issues: start a Pebble with `validitySeconds` for short-lived certificates.
 */

/** Options of {@link startAcmeProxy}. */
export interface AcmeProxyOptions {
  /** Pebble's directory URL, e.g. https://127.0.0.1:14000/dir */
  upstream: string
  /** PEM the proxy trusts for the upstream's HTTPS */
  upstreamCa: string
  /** the proxy's own HTTPS identity (reuse the Pebble TLS fixture so the same caBundle works) */
  tls: { cert: string, key: string }
  /** address to listen on (default 127.0.0.1) */
  host?: string
  /** port to listen on (default 0: a free port) */
  port?: number
  /** meta.profiles advertised in the directory (default { classic, shortlived }); null = no profiles */
  profiles?: Record<string, string> | null
  /** advertise renewalInfo (ARI) in the directory (default true) */
  ari?: boolean
}

/** What a request addresses, from its path (Pebble's paths and the directory's URLs). */
export type AcmeResource = 'directory' | 'newNonce' | 'newAccount' | 'newOrder' | 'order' | 'authz' | 'challenge' | 'finalize' | 'certificate' | 'revokeCert' | 'keyChange' | 'account' | 'renewalInfo' | 'other'

/** One request the proxy received, pushed to `requests` on arrival and completed when answered. */
export interface AcmeRequestRecord {
  /** Date.now() when the request arrived */
  at: number
  method: string
  /** the request path, query included */
  path: string
  resource: AcmeResource
  /** decoded JWS payload of a POST (JSON), '' for POST-as-GET, undefined for GET/HEAD */
  payload?: unknown
  /** decoded JWS protected header of a POST */
  protected?: Record<string, unknown>
  /** status sent to the client (0 if the connection was dropped or not answered yet) */
  status: number
  /** answered by the proxy (a fault rule, or the profile check) rather than Pebble; delays stay false */
  injected: boolean
  /** Date.now() when the answer was written (unset while unanswered or dropped): Retry-After counts from here */
  answeredAt?: number
  /** the Replay-Nonce the answer carried: a later request signed with it was made after this answer */
  replyNonce?: string
}

/** A fault rule: the first rule matching a request (and winning its probability draw) answers it. */
export interface AcmeFault {
  /** default: any */
  resource?: AcmeResource
  /** default: any */
  method?: string
  /** how many matching requests (default 1; Infinity allowed) */
  times?: number
  /** 0..1, default 1; a request that loses the draw goes on to the next rule */
  probability?: number
  /**
   * - status: a problem+json answer with a fresh Replay-Nonce; the type defaults to rateLimited for 429,
   *   serverInternal for 5xx and malformed otherwise (a bare name like 'badNonce' gets the ACME prefix)
   * - drop: destroy the socket without answering (the request is not forwarded)
   * - dropAnswer: forward the request, then destroy the socket instead of answering (the CA acted, the client never heard)
   * - delayMs: forward after a delay
   * - respond: an arbitrary answer (garbage JSON, wrong content type, ...), plus a fresh Replay-Nonce
   */
  action:
    | { status: number, retryAfter?: number | string, problemType?: string, detail?: string }
    | { drop: true }
    | { dropAnswer: true }
    | { delayMs: number }
    | { respond: { status: number, headers?: Record<string, string>, body: string } }
}

/** An ARI suggested window; strings are sent as given (to test bad values), Dates as ISO 8601. */
export interface RenewalWindow {
  start: Date | string
  end: Date | string
  explanationURL?: string
  /** Retry-After of the renewalInfo answer (default 21600) */
  retryAfterSeconds?: number
}

/** A running proxy. */
export interface AcmeProxy {
  /** the proxy's /dir */
  directoryUrl: string
  origin: string
  requests: AcmeRequestRecord[]
  count (resource: AcmeResource, filter?: (r: AcmeRequestRecord) => boolean): number
  inject (fault: AcmeFault): void
  clearFaults (): void
  /** ARI: answer renewalInfo for `certId` (or for every cert when certId is '*') with this window */
  setRenewalInfo (certId: string, window: RenewalWindow): void
  /** RFC 9773 certID (base64url(AKI keyIdentifier) + '.' + base64url(DER serial)) of a PEM certificate */
  certIdOf (pem: string): string
  close (): Promise<void>
}

const defaultProfiles = {
  classic: 'The default profile: certificates with the lifetime this Pebble issues',
  shortlived: 'Short-lived certificates (same Pebble lifetime; start Pebble with validitySeconds)',
}
const ariPath = '/renewal-info'
const defaultAriRetryAfter = 21600
const problemPrefix = 'urn:ietf:params:acme:error:'
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length'])
const staticRoutes: Array<[RegExp, AcmeResource]> = [
  [/^\/dir\/?$/, 'directory'],
  [/^\/nonce-plz/, 'newNonce'],
  [/^\/sign-me-up/, 'newAccount'],
  [/^\/order-plz/, 'newOrder'],
  [/^\/my-order\//, 'order'],
  [/^\/authZ\//, 'authz'],
  [/^\/chalZ\//, 'challenge'],
  [/^\/finalize-order\//, 'finalize'],
  [/^\/certZ\//, 'certificate'],
  [/^\/revoke-cert/, 'revokeCert'],
  [/^\/rollover-account-key/, 'keyChange'],
  [/^\/my-account\//, 'account'],
  [/^\/renewal-info(\/|$)/, 'renewalInfo'],
]

interface Reply { status: number, headers: OutgoingHttpHeaders, body: Buffer }

export async function startAcmeProxy (opts: AcmeProxyOptions): Promise<AcmeProxy> {
  const upstream = new URL(opts.upstream)
  const hostname = upstream.hostname.replace(/^\[|\]$/g, '')
  // Verify the upstream's certificate against its own name, not the Host header we pass through.
  const servername = isIP(hostname) ? '' : hostname
  const profiles = opts.profiles === undefined ? defaultProfiles : opts.profiles
  const agent = new https.Agent({ keepAlive: true, ca: opts.upstreamCa })
  const requests: AcmeRequestRecord[] = []
  const faults: Array<{ fault: AcmeFault, left: number }> = []
  const windows = new Map<string, RenewalWindow>()
  const seen = new Map<string, { notBefore: number, notAfter: number }>()
  const orderExtras = new Map<string, Record<string, unknown>>()
  const routes = new Map<string, AcmeResource>([[upstream.pathname, 'directory']])
  const sockets = new Set<Socket>()
  let origin = ''

  const classify = (pathname: string): AcmeResource =>
    routes.get(pathname) ?? staticRoutes.find(([re]) => re.test(pathname))?.[1] ?? 'other'

  const forward = (method: string, path: string, headers: OutgoingHttpHeaders, body?: Buffer) =>
    new Promise<Reply & { raw: string[] }>((resolve, reject) => {
      const req = https.request({ hostname, servername, port: upstream.port, method, path, headers, agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: {}, raw: res.rawHeaders, body: Buffer.concat(chunks) }))
      })
      req.on('error', reject)
      req.end(body)
    })

  const freshNonce = async () => {
    const noncePath = [...routes].find(([, r]) => r === 'newNonce')?.[0] ?? '/nonce-plz'
    try {
      const res = await forward('HEAD', noncePath, { host: upstream.host })
      return headerOf(res.raw, 'replay-nonce')
    } catch { return undefined }
  }

  const problem = async (status: number, type: string, detail: string, retryAfter?: number | string): Promise<Reply> => {
    const nonce = await freshNonce()
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' }
    if (nonce) headers['replay-nonce'] = nonce
    if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter)
    const fullType = type.includes(':') ? type : problemPrefix + type
    return { status, headers, body: Buffer.from(JSON.stringify({ type: fullType, detail, status })) }
  }

  const rewrite = (text: string) => text.replaceAll(upstream.origin, origin)

  const renewalInfo = (method: string, pathname: string): Promise<Reply> | Reply => {
    if (method !== 'GET' && method !== 'HEAD') return problem(405, 'malformed', 'renewalInfo only answers GET')
    const certId = decodeURIComponent(pathname.slice(ariPath.length + 1))
    let window = windows.get(certId) ?? windows.get('*')
    const cert = seen.get(certId)
    if (!window && cert) {
      // Default window: from 2/3 of the lifetime, for 1/10 of the lifetime (ends at ~77 %).
      const lifetime = cert.notAfter - cert.notBefore
      const start = cert.notBefore + Math.round(lifetime * 2 / 3)
      window = { start: new Date(start), end: new Date(start + Math.round(lifetime / 10)) }
    }
    if (!window) return problem(404, 'malformed', `no renewal information for certID ${JSON.stringify(certId)}`)
    const iso = (d: Date | string) => d instanceof Date ? d.toISOString() : d
    const json = {
      suggestedWindow: { start: iso(window.start), end: iso(window.end) },
      ...(window.explanationURL ? { explanationURL: window.explanationURL } : {}),
    }
    const headers = { 'content-type': 'application/json', 'retry-after': String(window.retryAfterSeconds ?? defaultAriRetryAfter) }
    return { status: 200, headers, body: Buffer.from(JSON.stringify(json)) }
  }

  const pickFault = (record: AcmeRequestRecord) => {
    for (const rule of faults) {
      const { resource, method, probability = 1 } = rule.fault
      if (rule.left <= 0 || (resource && resource !== record.resource)) continue
      if (method && method.toUpperCase() !== record.method) continue
      if (probability < 1 && Math.random() >= probability) continue
      rule.left -= 1
      return rule.fault.action
    }
    return undefined
  }

  const relay = async (req: IncomingMessage, record: AcmeRequestRecord, body: Buffer): Promise<Reply> => {
    const headers: OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(req.headers)) if (!hopByHop.has(name)) headers[name] = value
    headers['accept-encoding'] = 'identity'
    if (body.length > 0) headers['content-length'] = body.length
    const res = await forward(record.method, req.url ?? '/', headers, body.length > 0 ? body : undefined)
    const type = headerOf(res.raw, 'content-type') ?? ''
    for (let i = 0; i < res.raw.length; i += 2) {
      const name = res.raw[i].toLowerCase()
      if (hopByHop.has(name)) continue
      const value = name === 'location' || name === 'link' ? rewrite(res.raw[i + 1]) : res.raw[i + 1]
      const prev = res.headers[name]
      res.headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [String(prev)]), value]
    }
    if (record.method === 'HEAD') {
      const length = headerOf(res.raw, 'content-length')
      if (length) res.headers['content-length'] = length
      return res
    }
    if (/json/i.test(type)) {
      let text = rewrite(res.body.toString('utf8'))
      if (res.status < 300) text = augment(record, text, res.headers.location)
      res.body = Buffer.from(text)
    } else if (record.resource === 'certificate' && res.status === 200 && /pem-certificate-chain/i.test(type)) {
      try {
        const leaf = new X509Certificate(res.body)
        seen.set(certIdOf(res.body.toString('utf8')), { notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) })
      } catch {}
    }
    return res
  }

  /** Adds ARI and profiles to the directory, and `profile`/`replaces` to order objects. */
  const augment = (record: AcmeRequestRecord, text: string, location: unknown): string => {
    try {
      const json = JSON.parse(text)
      if (record.resource === 'directory') {
        if (opts.ari !== false) json.renewalInfo = origin + ariPath
        if (profiles) json.meta = { ...json.meta, profiles }
        for (const [key, value] of Object.entries(json)) {
          if (typeof value === 'string' && isResource(key)) routes.set(new URL(value).pathname, key)
        }
      } else if (record.resource === 'newOrder') {
        const { profile, replaces } = (record.payload ?? {}) as Record<string, unknown>
        const extras = { ...(profile !== undefined ? { profile } : {}), ...(replaces !== undefined ? { replaces } : {}) }
        if (Object.keys(extras).length === 0) return text
        if (typeof location === 'string') orderExtras.set(new URL(location).pathname, extras)
        if (typeof json.finalize === 'string') orderExtras.set(new URL(json.finalize).pathname, extras)
        Object.assign(json, extras)
      } else if (record.resource === 'order' || record.resource === 'finalize') {
        const extras = orderExtras.get(record.path.split('?')[0])
        if (!extras) return text
        Object.assign(json, extras)
      } else {
        return text
      }
      return JSON.stringify(json)
    } catch {
      return text
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const at = Date.now() // arrival: before the body is read
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    const method = (req.method ?? 'GET').toUpperCase()
    const pathname = new URL(req.url ?? '/', origin).pathname
    const record: AcmeRequestRecord = { at, method, path: req.url ?? '/', resource: classify(pathname), status: 0, injected: false }
    if (method === 'POST') Object.assign(record, decodeJws(body))
    requests.push(record)

    let reply: Reply
    const action = pickFault(record)
    if (action && 'drop' in action) {
      record.injected = true
      req.socket.destroy()
      return
    }
    if (action && 'delayMs' in action) await new Promise((resolve) => setTimeout(resolve, action.delayMs))
    if (action && 'respond' in action) {
      const headers: OutgoingHttpHeaders = { ...action.respond.headers }
      const nonce = Object.keys(headers).some((h) => h.toLowerCase() === 'replay-nonce') ? undefined : await freshNonce()
      if (nonce) headers['replay-nonce'] = nonce
      reply = { status: action.respond.status, headers, body: Buffer.from(action.respond.body) }
    } else if (action && 'status' in action) {
      const type = action.problemType ?? (action.status === 429 ? 'rateLimited' : action.status >= 500 ? 'serverInternal' : 'malformed')
      reply = await problem(action.status, type, action.detail ?? `${action.status} injected by the test ACME proxy`, action.retryAfter)
    } else if (record.resource === 'renewalInfo') {
      reply = await renewalInfo(method, pathname)
    } else {
      const profile = record.resource === 'newOrder' ? (record.payload as { profile?: unknown } | undefined)?.profile : undefined
      if (profile !== undefined && !(typeof profile === 'string' && profiles && Object.hasOwn(profiles, profile))) {
        reply = await problem(400, 'invalidProfile', `profile ${JSON.stringify(profile)} is not offered by this server`)
        record.injected = true
      } else {
        reply = await relay(req, record, body)
      }
    }
    if (action && !('delayMs' in action)) record.injected = true
    if (action && 'dropAnswer' in action) {
      req.socket.destroy()
      return
    }
    if (res.destroyed) return
    if (!('content-length' in reply.headers) && method !== 'HEAD' && reply.status !== 204 && reply.status !== 304) {
      reply.headers['content-length'] = reply.body.length
    }
    record.status = reply.status
    record.answeredAt = Date.now()
    const nonce = reply.headers['replay-nonce']
    if (typeof nonce === 'string') record.replyNonce = nonce
    res.writeHead(reply.status, reply.headers)
    res.end(method === 'HEAD' ? undefined : reply.body)
  }

  const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => {
    handle(req, res).catch(async (err: Error) => {
      if (res.headersSent || res.destroyed) {
        res.destroy()
        return
      }
      const reply = await problem(502, 'serverInternal', `ACME proxy: upstream failed: ${err.message}`)
      res.writeHead(reply.status, reply.headers).end(reply.body)
    })
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const host = !opts.host || opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host
  origin = `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`

  return {
    directoryUrl: origin + upstream.pathname,
    origin,
    requests,
    count: (resource, filter) => requests.filter((r) => r.resource === resource && (!filter || filter(r))).length,
    inject: (fault) => { faults.push({ fault, left: fault.times ?? 1 }) },
    clearFaults: () => { faults.length = 0 },
    setRenewalInfo: (certId, window) => { windows.set(certId, window) },
    certIdOf,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
      agent.destroy()
    }),
  }
}

function isResource (key: string): key is AcmeResource {
  return ['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange'].includes(key)
}

function headerOf (raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) return raw[i + 1]
  return undefined
}

function decodeJws (body: Buffer): Pick<AcmeRequestRecord, 'payload' | 'protected'> {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { protected?: string, payload?: string }
    const text = (b64u?: string) => Buffer.from(b64u ?? '', 'base64url').toString('utf8')
    const payload = jws.payload === '' ? '' : text(jws.payload)
    let parsed: unknown = payload
    try { parsed = payload === '' ? '' : JSON.parse(payload) } catch {}
    return { protected: JSON.parse(text(jws.protected)), payload: parsed }
  } catch {
    return { payload: body.toString('utf8') }
  }
}

/** A DER TLV: tag, where its content starts and where it ends. */
interface Tlv { tag: number, start: number, end: number }

function readTlv (der: Buffer, offset: number): Tlv {
  const tag = der[offset]
  let length = der[offset + 1]
  let start = offset + 2
  if (length & 0x80) {
    const n = length & 0x7f
    length = 0
    for (let i = 0; i < n; i++) length = length * 256 + der[start + i]
    start += n
  }
  if (start + length > der.length) throw new Error('truncated DER')
  return { tag, start, end: start + length }
}

function children (der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let offset = parent.start; offset < parent.end; offset = out[out.length - 1].end) out.push(readTlv(der, offset))
  return out
}

const akiOid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]) // 2.5.29.35

/** RFC 9773 certID of the first certificate in a PEM: base64url(AKI keyIdentifier).base64url(serial). */
function certIdOf (pem: string): string {
  const der = new X509Certificate(pem).raw
  const tbs = children(der, readTlv(der, 0))[0]
  const fields = children(der, tbs)
  const serial = fields[fields[0].tag === 0xa0 ? 1 : 0]
  const extensions = fields.find((f) => f.tag === 0xa3)
  if (!extensions) throw new Error('certificate has no extensions, so no Authority Key Identifier')
  for (const ext of children(der, children(der, extensions)[0])) {
    const parts = children(der, ext)
    if (!der.subarray(parts[0].start - 2, parts[0].end).equals(akiOid)) continue
    const value = parts[parts.length - 1] // OCTET STRING wrapping AuthorityKeyIdentifier
    const keyId = children(der, readTlv(der, value.start)).find((f) => f.tag === 0x80)
    if (!keyId) break
    const b64u = (t: Tlv) => der.subarray(t.start, t.end).toString('base64url')
    return `${b64u(keyId)}.${b64u(serial)}`
  }
  throw new Error('certificate has no Authority Key Identifier keyIdentifier')
}
