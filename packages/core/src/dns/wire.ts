/*
 * The DNS wire format (RFC 1035 §4), only what DNS UPDATE (RFC 2136) and TSIG (RFC 8945)
 * need: messages are encoded without name compression and decoded with it.
 */

export const RecordType = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, TSIG: 250, ANY: 255 } as const
export const RecordClass = { IN: 1, NONE: 254, ANY: 255 } as const
export const Opcode = { QUERY: 0, UPDATE: 5 } as const

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE']
const TSIG_ERRORS: Record<number, string> = { 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' }

/** The mnemonic of an RCODE or TSIG error, e.g. 5 -> 'REFUSED', 17 -> 'BADKEY'. */
export function rcodeName (code: number): string {
  return RCODES[code] ?? TSIG_ERRORS[code] ?? `RCODE${code}`
}

export interface Question {
  name: string
  type: number
  class: number
}

export interface ResourceRecord {
  name: string
  type: number
  class: number
  ttl: number
  data: Buffer
}

export interface Message {
  id: number
  opcode: number
  /** QR bit: a response */
  response?: boolean
  rcode?: number
  /** the question section (the zone section in an UPDATE) */
  questions: Question[]
  /** answers (prerequisites in an UPDATE) */
  answers?: ResourceRecord[]
  /** authority records (the updates in an UPDATE) */
  authority?: ResourceRecord[]
  additional?: ResourceRecord[]
}

export interface DecodedMessage extends Required<Message> {
  /** byte offset of the last additional record, where a TSIG record starts */
  lastAdditionalOffset?: number
}

/** A domain name in wire form, uncompressed; lower case when `canonical` (RFC 4034 §6.2, for TSIG). */
export function encodeName (name: string, canonical = false): Buffer {
  const trimmed = name.replace(/\.$/, '')
  const parts: Buffer[] = []
  if (trimmed !== '') {
    for (const label of trimmed.split('.')) {
      const bytes = Buffer.from(canonical ? label.toLowerCase() : label, 'ascii')
      if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`bad DNS label in ${JSON.stringify(name)}`)
      parts.push(Buffer.from([bytes.length]), bytes)
    }
  }
  parts.push(Buffer.from([0]))
  return Buffer.concat(parts)
}

/** TXT RDATA: the value as character-strings of at most 255 bytes each. */
export function txtData (value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8')
  const parts: Buffer[] = []
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255)
    parts.push(Buffer.from([chunk.length]), chunk)
  }
  return Buffer.concat(parts)
}

export function encodeRecord (rr: ResourceRecord): Buffer {
  const fixed = Buffer.alloc(10)
  fixed.writeUInt16BE(rr.type, 0)
  fixed.writeUInt16BE(rr.class, 2)
  fixed.writeUInt32BE(rr.ttl, 4)
  fixed.writeUInt16BE(rr.data.length, 8)
  return Buffer.concat([encodeName(rr.name), fixed, rr.data])
}

export function encodeMessage (msg: Message): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(msg.id, 0)
  header.writeUInt16BE((msg.response ? 0x8000 : 0) | (msg.opcode << 11) | (msg.rcode ?? 0), 2)
  const sections = [msg.answers ?? [], msg.authority ?? [], msg.additional ?? []]
  header.writeUInt16BE(msg.questions.length, 4)
  sections.forEach((records, i) => header.writeUInt16BE(records.length, 6 + i * 2))
  const questions = msg.questions.map((q) => {
    const tail = Buffer.alloc(4)
    tail.writeUInt16BE(q.type, 0)
    tail.writeUInt16BE(q.class, 2)
    return Buffer.concat([encodeName(q.name), tail])
  })
  return Buffer.concat([header, ...questions, ...sections.flat().map(encodeRecord)])
}

/** Reads a possibly compressed name at `offset`; returns it (no trailing dot) and the offset after it. */
export function decodeName (buf: Buffer, offset: number): { name: string, next: number } {
  const labels: string[] = []
  let pos = offset
  let next = -1
  for (let jumps = 0; ; jumps++) {
    if (pos >= buf.length || jumps > 64) throw new RangeError('malformed DNS name')
    const len = buf[pos]!
    if (len === 0) { pos += 1; break }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!
      continue
    }
    if (len > 63 || pos + 1 + len > buf.length) throw new RangeError('malformed DNS name')
    labels.push(buf.toString('ascii', pos + 1, pos + 1 + len))
    pos += 1 + len
  }
  return { name: labels.join('.'), next: next < 0 ? pos : next }
}

export function decodeMessage (buf: Buffer): DecodedMessage {
  if (buf.length < 12) throw new RangeError('DNS message shorter than its header')
  const flags = buf.readUInt16BE(2)
  const counts = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o))
  let pos = 12
  const questions: Question[] = []
  for (let i = 0; i < counts[0]!; i++) {
    const { name, next } = decodeName(buf, pos)
    questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) })
    pos = next + 4
  }
  let lastAdditionalOffset: number | undefined
  const sections: ResourceRecord[][] = [[], [], []]
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      if (s === 2) lastAdditionalOffset = pos
      const { name, next } = decodeName(buf, pos)
      if (next + 10 > buf.length) throw new RangeError('truncated DNS record')
      const length = buf.readUInt16BE(next + 8)
      const start = next + 10
      if (start + length > buf.length) throw new RangeError('truncated DNS record')
      sections[s]!.push({
        name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2), ttl: buf.readUInt32BE(next + 4), data: buf.subarray(start, start + length),
      })
      pos = start + length
    }
  }
  return {
    id: buf.readUInt16BE(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    questions,
    answers: sections[0]!,
    authority: sections[1]!,
    additional: sections[2]!,
    ...(lastAdditionalOffset !== undefined ? { lastAdditionalOffset } : {}),
  }
}
