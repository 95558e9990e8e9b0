import http from 'node:http'

/*
 * A local server speaking the part of the Route 53 REST/XML API (2013-04-01) that DNS-01
 * uses, for the real @aws-sdk/client-route-53: ListHostedZonesByName, GetHostedZone,
 * ListResourceRecordSets, ChangeResourceRecordSets (CREATE/UPSERT/DELETE applied atomically
 * and validated like Route 53: exact-match DELETE, quoted TXT values, names inside the zone)
 * and GetChange (PENDING for a set number of polls, then INSYNC). Errors use Route 53's
 * <ErrorResponse><Error><Type/><Code/><Message/></Error> body; faults can be injected.
 */

const NS = 'https://route53.amazonaws.com/doc/2013-04-01/'
export type Route53Operation = 'ListHostedZonesByName' | 'GetHostedZone' | 'ListResourceRecordSets' | 'ChangeResourceRecordSets' | 'GetChange'

export interface FakeZone { id: string, name: string, private?: boolean }
export interface FakeRecordSet { name: string, type: string, ttl: number, values: string[] }

export interface FakeRoute53 {
  endpoint: string
  /** zone id -> record sets (names with a trailing dot, values as sent: quoted) */
  sets: Map<string, FakeRecordSet[]>
  /** every ChangeResourceRecordSets: zone, action, name and values */
  changes: Array<{ zone: string, action: string, name: string, ttl: number, values: string[] }>
  /** operations in the order they were called */
  calls: Route53Operation[]
  /** GetChange answers PENDING this many times per change before INSYNC (default 2) */
  pendingPolls: number
  /** answers the next `times` calls of `op` with this error */
  fail (op: Route53Operation, status: number, code: string, message: string, times?: number): void
  close (): Promise<void>
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const xmlUnescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
const tag = (xml: string, name: string) => xmlUnescape(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1] ?? '')
const dot = (name: string) => name.endsWith('.') ? name.toLowerCase() : `${name.toLowerCase()}.`
const reversed = (name: string) => dot(name).split('.').reverse().join('.')

export async function startFakeRoute53 (accessKeyId: string, zones: FakeZone[]): Promise<FakeRoute53> {
  const sets = new Map<string, FakeRecordSet[]>(zones.map((z) => [z.id, [
    { name: dot(z.name), type: 'NS', ttl: 172800, values: ['ns-1.awsdns-00.com.'] },
    { name: dot(z.name), type: 'SOA', ttl: 900, values: ['ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400'] },
  ]]))
  const changes: FakeRoute53['changes'] = []
  const calls: Route53Operation[] = []
  const pending = new Map<string, number>()
  const faults: Array<{ op: Route53Operation, status: number, code: string, message: string }> = []
  let changeCounter = 0

  const reply = (res: http.ServerResponse, status: number, root: string, inner: string) => {
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': `req-${Date.now()}` })
      .end(`<?xml version="1.0"?>\n<${root} xmlns="${NS}">${inner}</${root}>`)
  }
  const error = (res: http.ServerResponse, status: number, code: string, message: string) =>
    reply(res, status, 'ErrorResponse', `<Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>req-${Date.now()}</RequestId>`)
  const invalidBatch = (res: http.ServerResponse, message: string) => error(res, 400, 'InvalidChangeBatch', message)
  const zoneXml = (z: FakeZone) => `<HostedZone><Id>/hostedzone/${z.id}</Id><Name>${dot(z.name)}</Name><CallerReference>ref-${z.id}</CallerReference><Config><PrivateZone>${z.private === true}</PrivateZone></Config><ResourceRecordSetCount>${sets.get(z.id)!.length}</ResourceRecordSetCount></HostedZone>`
  const setXml = (s: FakeRecordSet) => `<ResourceRecordSet><Name>${xmlEscape(s.name)}</Name><Type>${s.type}</Type><TTL>${s.ttl}</TTL><ResourceRecords>${s.values.map((v) => `<ResourceRecord><Value>${xmlEscape(v)}</Value></ResourceRecord>`).join('')}</ResourceRecords></ResourceRecordSet>`
  const changeInfo = (id: string, status: string) => `<ChangeInfo><Id>/change/${id}</Id><Status>${status}</Status><SubmittedAt>${new Date().toISOString()}</SubmittedAt></ChangeInfo>`

  function applyBatch (res: http.ServerResponse, zone: FakeZone, body: string) {
    const working = sets.get(zone.id)!.map((s) => ({ ...s, values: [...s.values] }))
    const batch = [...body.matchAll(/<Change>([\s\S]*?)<\/Change>/g)].map((m) => m[1]!)
    if (batch.length === 0) return error(res, 400, 'InvalidInput', 'Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=UPSERT, Name=null, Type=null, SetIdentifier=null]')
    const applied: FakeRoute53['changes'] = []
    for (const change of batch) {
      const action = tag(change, 'Action')
      const name = dot(tag(change, 'Name'))
      const type = tag(change, 'Type')
      const ttl = Number(tag(change, 'TTL'))
      const values = [...change.matchAll(/<Value>([\s\S]*?)<\/Value>/g)].map((m) => xmlUnescape(m[1]!))
      if (name !== dot(zone.name) && !name.endsWith(`.${dot(zone.name)}`)) return invalidBatch(res, `[RRSet with DNS name ${name} is not permitted in zone ${dot(zone.name)}]`)
      const bad = type === 'TXT' && values.find((v) => !/^"(?:[^"\\]|\\.)*"(?: "(?:[^"\\]|\\.)*")*$/.test(v))
      if (bad) return invalidBatch(res, `[Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '${bad}'']`)
      const index = working.findIndex((s) => s.name === name && s.type === type)
      const described = `[name='${name}', type='${type}']`
      if (action === 'CREATE' && index >= 0) return invalidBatch(res, `[Tried to create resource record set ${described} but it already exists]`)
      if (action === 'DELETE') {
        if (index < 0) return invalidBatch(res, `[Tried to delete resource record set ${described} but it was not found]`)
        const current = working[index]!
        if (current.ttl !== ttl || [...current.values].sort().join('\n') !== [...values].sort().join('\n')) {
          return invalidBatch(res, `[Tried to delete resource record set ${described} but the values provided do not match the current values]`)
        }
        working.splice(index, 1)
      } else if (action === 'CREATE' || action === 'UPSERT') {
        if (index >= 0) working.splice(index, 1)
        working.push({ name, type, ttl, values })
      } else {
        return error(res, 400, 'InvalidInput', `Invalid request: unknown action ${action}`)
      }
      applied.push({ zone: zone.id, action, name, ttl, values })
    }
    sets.set(zone.id, working)
    changes.push(...applied)
    const id = `C${String(++changeCounter).padStart(10, '0')}`
    pending.set(id, fake.pendingPolls)
    return reply(res, 200, 'ChangeResourceRecordSetsResponse', changeInfo(id, 'PENDING'))
  }

  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const path = url.pathname.replace(/^\/2013-04-01\//, '').replace(/\/$/, '').split('/')
      const op = operationOf(req.method ?? '', path)
      if (!op) return error(res, 404, 'UnknownOperationException', `no operation at ${url.pathname}`)
      calls.push(op)
      if (!(req.headers.authorization ?? '').startsWith(`AWS4-HMAC-SHA256 Credential=${accessKeyId}/`)) {
        return error(res, 403, 'InvalidClientTokenId', 'The security token included in the request is invalid.')
      }
      const faultIndex = faults.findIndex((f) => f.op === op)
      if (faultIndex >= 0) {
        const [fault] = faults.splice(faultIndex, 1)
        return error(res, fault!.status, fault!.code, fault!.message)
      }
      if (op === 'ListHostedZonesByName') {
        const from = reversed(url.searchParams.get('dnsname') ?? '')
        const max = Number(url.searchParams.get('maxitems') ?? 100)
        const listed = zones.filter((z) => reversed(z.name) >= from).sort((a, b) => reversed(a.name).localeCompare(reversed(b.name))).slice(0, max)
        return reply(res, 200, 'ListHostedZonesByNameResponse', `<HostedZones>${listed.map(zoneXml).join('')}</HostedZones><DNSName>${dot(url.searchParams.get('dnsname') ?? '')}</DNSName><IsTruncated>false</IsTruncated><MaxItems>${max}</MaxItems>`)
      }
      if (op === 'GetChange') {
        const id = path[1]!
        const left = pending.get(id)
        if (left === undefined) return error(res, 404, 'NoSuchChange', `A change with the specified change ID does not exist: ${id}`)
        pending.set(id, left - 1)
        return reply(res, 200, 'GetChangeResponse', changeInfo(id, left > 0 ? 'PENDING' : 'INSYNC'))
      }
      const zone = zones.find((z) => z.id === path[1])
      if (!zone) return error(res, 404, 'NoSuchHostedZone', `No hosted zone found with ID: ${path[1]}`)
      if (op === 'GetHostedZone') return reply(res, 200, 'GetHostedZoneResponse', zoneXml(zone))
      if (op === 'ListResourceRecordSets') {
        const name = dot(url.searchParams.get('name') ?? zone.name)
        const type = url.searchParams.get('type') ?? ''
        const max = Number(url.searchParams.get('maxitems') ?? 300)
        const ordered = [...sets.get(zone.id)!].sort((a, b) => reversed(a.name).localeCompare(reversed(b.name)) || a.type.localeCompare(b.type))
        const listed = ordered.filter((s) => reversed(s.name) > reversed(name) || (s.name === name && s.type >= type)).slice(0, max)
        return reply(res, 200, 'ListResourceRecordSetsResponse', `<ResourceRecordSets>${listed.map(setXml).join('')}</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>${max}</MaxItems>`)
      }
      return applyBatch(res, zone, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const fake: FakeRoute53 = {
    endpoint: `http://127.0.0.1:${port}`,
    sets,
    changes,
    calls,
    pendingPolls: 2,
    fail (op, status, code, message, times = 1) {
      for (let i = 0; i < times; i++) faults.push({ op, status, code, message })
    },
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }),
  }
  return fake
}

function operationOf (method: string, path: string[]): Route53Operation | undefined {
  if (path[0] === 'hostedzonesbyname') return 'ListHostedZonesByName'
  if (path[0] === 'change') return 'GetChange'
  if (path[0] !== 'hostedzone') return undefined
  if (path.length === 2) return 'GetHostedZone'
  if (path[2] === 'rrset') return method === 'POST' ? 'ChangeResourceRecordSets' : 'ListResourceRecordSets'
  return undefined
}
