import { randomBytes } from 'node:crypto'
import http from 'node:http'

/*
 * A local server speaking the part of the Cloudflare API v4 that DNS-01 uses, with the
 * documented envelopes: { success, errors: [{ code, message }], messages, result, result_info }.
 * It checks the Bearer token, validates records like the API does (name inside the zone,
 * TTL 1 or 60..86400, identical records refused with 81058), and can answer the next requests
 * with an injected fault (429 with Retry-After, 5xx).
 */

export interface CloudflareRecord { id: string, zone_id: string, name: string, type: string, content: string, ttl: number }

export interface FakeCloudflare {
  baseUrl: string
  /** zone name -> id */
  zones: Map<string, string>
  records: CloudflareRecord[]
  /** every request: method, path and query */
  requests: Array<{ method: string, url: string, authorization?: string }>
  /** answers the next `times` requests with this status and errors (and headers) */
  fail (status: number, errors: Array<{ code: number, message: string }>, opts?: { times?: number, headers?: Record<string, string> }): void
  /** TXT values at a name, unquoted */
  txt (name: string): string[]
  close (): Promise<void>
}

export async function startFakeCloudflare (token: string, zoneNames: string[]): Promise<FakeCloudflare> {
  const zones = new Map(zoneNames.map((z) => [z, randomBytes(16).toString('hex')]))
  const records: CloudflareRecord[] = []
  const requests: FakeCloudflare['requests'] = []
  const faults: Array<{ status: number, errors: Array<{ code: number, message: string }>, headers: Record<string, string> }> = []

  const send = (res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
  }
  const ok = (res: http.ServerResponse, result: unknown, status = 200) =>
    send(res, status, { success: true, errors: [], messages: [], result, ...(Array.isArray(result) ? { result_info: { page: 1, per_page: 100, count: result.length, total_count: result.length, total_pages: 1 } } : {}) })
  const error = (res: http.ServerResponse, status: number, code: number, message: string) =>
    send(res, status, { success: false, errors: [{ code, message }], messages: [], result: null })

  const server = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => { raw += c.toString() })
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      requests.push({ method: req.method ?? '', url: `${url.pathname}${url.search}`, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) })
      const fault = faults.shift()
      if (fault) return send(res, fault.status, { success: false, errors: fault.errors, messages: [], result: null }, fault.headers)
      if (req.headers.authorization !== `Bearer ${token}`) return error(res, 403, 10000, 'Authentication error')
      const path = url.pathname.replace(/^\/client\/v4/, '').split('/').filter(Boolean)
      const zoneId = path[1]
      const zoneName = [...zones].find(([, id]) => id === zoneId)?.[0]

      if (req.method === 'GET' && path.length === 1 && path[0] === 'zones') {
        const name = url.searchParams.get('name')
        return ok(res, [...zones].filter(([z]) => !name || z === name).map(([z, id]) => ({ id, name: z, status: 'active' })))
      }
      if (path[0] !== 'zones' || !zoneName) return error(res, 404, 7003, 'Could not route to /zones/' + (zoneId ?? '') + ', perhaps your object identifier is invalid?')
      if (req.method === 'GET' && path.length === 2) return ok(res, { id: zoneId, name: zoneName, status: 'active' })
      if (path[2] !== 'dns_records') return error(res, 404, 7000, 'No route for that URI')

      if (req.method === 'GET' && path.length === 3) {
        const [name, type] = [url.searchParams.get('name'), url.searchParams.get('type')]
        return ok(res, records.filter((r) => r.zone_id === zoneId && (!name || r.name === name) && (!type || r.type === type)))
      }
      if (req.method === 'POST' && path.length === 3) {
        let body: { type?: string, name?: string, content?: string, ttl?: number }
        try { body = JSON.parse(raw) } catch { return error(res, 400, 9207, 'Request body is invalid.') }
        const name = (body.name ?? '').toLowerCase()
        if (body.type !== 'TXT') return error(res, 400, 9000, 'DNS name is invalid.')
        if (name !== zoneName && !name.endsWith(`.${zoneName}`)) return error(res, 400, 9005, `Content for TXT record is invalid. Name ${name} is outside the zone ${zoneName}.`)
        const ttl = body.ttl ?? 1
        if (ttl !== 1 && (ttl < 60 || ttl > 86_400)) return error(res, 400, 9021, 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.')
        const content = /^".*"$/.test(body.content ?? '') ? body.content! : `"${body.content ?? ''}"`
        if (records.some((r) => r.zone_id === zoneId && r.name === name && r.type === 'TXT' && r.content === content)) {
          return error(res, 400, 81058, 'An identical record already exists.')
        }
        const record = { id: randomBytes(16).toString('hex'), zone_id: zoneId!, name, type: 'TXT', content, ttl }
        records.push(record)
        return ok(res, record)
      }
      if (req.method === 'DELETE' && path.length === 4) {
        const index = records.findIndex((r) => r.zone_id === zoneId && r.id === path[3])
        if (index < 0) return error(res, 404, 81044, 'Record does not exist.')
        records.splice(index, 1)
        return ok(res, { id: path[3] })
      }
      return error(res, 405, 10405, 'Method not allowed')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    baseUrl: `http://127.0.0.1:${port}/client/v4`,
    zones,
    records,
    requests,
    fail (status, errors, opts = {}) {
      for (let i = 0; i < (opts.times ?? 1); i++) faults.push({ status, errors, headers: opts.headers ?? {} })
    },
    txt: (name) => records.filter((r) => r.name === name && r.type === 'TXT').map((r) => r.content.slice(1, -1)),
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }),
  }
}
