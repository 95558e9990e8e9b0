/*
 * The little DER the issuance path needs (a PKCS#10 request, the ARI CertID), without loading
 * @peculiar/x509 and its ASN.1 schema stack (~70-90 ms of a cold start).
 */
import { isIPv4 } from 'node:net'

export type Der = Buffer

function tlv (tag: number, content: Uint8Array): Der {
  const n = content.length
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...length]), content])
}

export const der = {
  sequence: (...items: Der[]): Der => tlv(0x30, Buffer.concat(items)),
  set: (...items: Der[]): Der => tlv(0x31, Buffer.concat(items)),
  /** [n] with constructed content (EXPLICIT, or IMPLICIT over a SET/SEQUENCE) */
  context: (n: number, ...items: Der[]): Der => tlv(0xa0 + n, Buffer.concat(items)),
  /** [n] IMPLICIT over a primitive type */
  contextPrimitive: (n: number, bytes: Uint8Array): Der => tlv(0x80 + n, bytes),
  integer: (value: number): Der => tlv(0x02, Buffer.from([value])),
  null: (): Der => Buffer.from([0x05, 0x00]),
  utf8: (text: string): Der => tlv(0x0c, Buffer.from(text, 'utf8')),
  octets: (bytes: Uint8Array): Der => tlv(0x04, bytes),
  bits: (bytes: Uint8Array): Der => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes])),
  oid (dotted: string): Der {
    const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number)
    const bytes = [40 * first + second]
    for (const arc of rest) {
      const base128 = [arc & 0x7f]
      for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v & 0x7f) | 0x80)
      bytes.push(...base128)
    }
    return tlv(0x06, Buffer.from(bytes))
  },
}

/** One element read from DER: its tag and where its content lies in the buffer. */
export interface Element {
  tag: number
  start: number
  end: number
}

/** Reads the element at `offset`; throws RangeError on truncated or indefinite-length input. */
export function readElement (buf: Uint8Array, offset: number): Element {
  if (offset + 2 > buf.length) throw new RangeError('DER: truncated')
  const tag = buf[offset]!
  let length = buf[offset + 1]!
  let start = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    if (count === 0 || count > 4 || start + count > buf.length) throw new RangeError('DER: bad length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + buf[start + i]!
    start += count
  }
  if (start + length > buf.length) throw new RangeError('DER: truncated')
  return { tag, start, end: start + length }
}

/** The elements directly inside a constructed element. */
export function children (buf: Uint8Array, parent: Element): Element[] {
  const out: Element[] = []
  for (let at = parent.start; at < parent.end;) {
    const el = readElement(buf, at)
    out.push(el)
    at = el.end
  }
  return out
}

/** IPv4 or IPv6 text as the 4 or 16 bytes of an iPAddress general name. */
export function ipBytes (ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number))
  let text = ip
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1]
  if (v4) {
    const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number]
    text = `${text.slice(0, -v4.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16)))
  const left = parse(head)
  const right = tail === undefined ? [] : parse(tail)
  const groups = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2))
  return out
}
