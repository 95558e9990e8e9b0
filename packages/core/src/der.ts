/*
 * The little DER the issuance path needs (a PKCS#10 request, the ARI CertID), without loading
 * @peculiar/x509 and its ASN.1 schema stack (~70-90 ms of a cold start).
 */
import { isIPv4 } from 'node:net'
import { isIpAddress } from './names.js'

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
  /** a small INTEGER (0-127: versions) */
  integer: (value: number): Der => tlv(0x02, Buffer.from([value])),
  /** an INTEGER from its content bytes (already minimal and positive) */
  integerBytes: (bytes: Uint8Array): Der => tlv(0x02, bytes),
  boolean: (value: boolean): Der => Buffer.from([0x01, 0x01, value ? 0xff : 0x00]),
  /** a BIT STRING of named bits (KeyUsage) in one byte: trailing zero bits are unused */
  namedBits (byte: number): Der {
    let unused = 0
    while (unused < 7 && ((byte >> unused) & 1) === 0) unused++
    return tlv(0x03, Buffer.from([unused, byte]))
  },
  /** UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5), to the second */
  time (date: Date): Der {
    const text = date.toISOString().replace(/[-:T]|\.\d+/g, '')
    const year = date.getUTCFullYear()
    return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(text.slice(2), 'ascii')) : tlv(0x18, Buffer.from(text, 'ascii'))
  },
  null: (): Der => Buffer.from([0x05, 0x00]),
  utf8: (text: string): Der => tlv(0x0c, Buffer.from(text, 'utf8')),
  octets: (bytes: Uint8Array): Der => tlv(0x04, bytes),
  bits: (bytes: Uint8Array): Der => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes])),
  /** (the few OIDs in use are encoded once) */
  oid (dotted: string): Der {
    let encodedOid = OIDS.get(dotted)
    if (encodedOid === undefined) OIDS.set(dotted, encodedOid = oidDer(dotted))
    return encodedOid
  },
}

const OIDS = new Map<string, Der>()

function oidDer (dotted: string): Der {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number)
  const bytes = [40 * first + second]
  for (const arc of rest) {
    const base128 = [arc & 0x7f]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v & 0x7f) | 0x80)
    bytes.push(...base128)
  }
  return tlv(0x06, Buffer.from(bytes))
}

/** Public key algorithms (SubjectPublicKeyInfo, PKCS#8). */
export const KEY_OIDS = { ecPublicKey: '1.2.840.10045.2.1', rsaEncryption: '1.2.840.113549.1.1.1' }

/** Named curves by JWK name: their OID and the byte length of a coordinate. */
export const EC_CURVES: Record<string, { oid: string, size: number }> = {
  'P-256': { oid: '1.2.840.10045.3.1.7', size: 32 },
  'P-384': { oid: '1.3.132.0.34', size: 48 },
  'P-521': { oid: '1.3.132.0.35', size: 66 },
}

/** An unsigned big-endian number without its leading zero bytes (at least one byte kept). */
export function unsignedBytes (bytes: Buffer): Buffer {
  let at = 0
  while (at < bytes.length - 1 && bytes[at] === 0) at++
  return bytes.subarray(at)
}

/** A Name with one common name (2.5.4.3), or the empty Name. */
export function subjectName (commonName: string | undefined): Der {
  return commonName === undefined ? der.sequence() : der.sequence(der.set(der.sequence(der.oid('2.5.4.3'), der.utf8(commonName))))
}

/** GeneralNames for subjectAltName: a dNSName per name, an iPAddress per IP address. */
export function generalNames (names: string[]): Der {
  return der.sequence(...names.map((name) => isIpAddress(name)
    ? der.contextPrimitive(7, ipBytes(name))
    : der.contextPrimitive(2, Buffer.from(name, 'ascii'))))
}

/** One element read from DER: its tag, where it begins, and where its content lies. */
export interface Element {
  tag: number
  /** offset of its tag byte */
  at: number
  /** offset of its content */
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
  return { tag, at: offset, start, end: start + length }
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

/** The whole element (header and content), e.g. to copy a Name or sign a tbsCertificate. */
export function encoded (buf: Buffer, el: Element): Buffer {
  return buf.subarray(el.at, el.end)
}

/** The content of an element. */
export function content (buf: Buffer, el: Element): Buffer {
  return buf.subarray(el.start, el.end)
}

/** An OBJECT IDENTIFIER element's dotted text. */
export function oidText (buf: Buffer, el: Element): string {
  if (el.tag !== 0x06 || el.end === el.start) throw new RangeError('DER: not an OID')
  const arcs: number[] = []
  let value = 0
  for (let i = el.start; i < el.end; i++) {
    value = value * 128 + (buf[i]! & 0x7f)
    if ((buf[i]! & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80)
      else arcs.push(value)
      value = 0
    }
  }
  return arcs.join('.')
}

/** A directory string's text (UTF8String, PrintableString, IA5String, TeletexString, BMPString). */
export function stringText (buf: Buffer, el: Element): string {
  const bytes = content(buf, el)
  switch (el.tag) {
    case 0x0c: return bytes.toString('utf8')
    case 0x13: case 0x16: case 0x14: return bytes.toString('latin1')
    case 0x1e: return Buffer.from(bytes).swap16().toString('utf16le')
    default: throw new RangeError(`DER: tag 0x${el.tag.toString(16)} is not a string`)
  }
}

/** A DER element from PEM text (the first block with this label). */
export function pemBlock (pem: string, labels: string[]): Buffer {
  for (const label of labels) {
    const body = new RegExp(`-----BEGIN ${label}-----([^-]*)-----END ${label}-----`).exec(pem)?.[1]
    if (body !== undefined) return Buffer.from(body.replace(/\s/g, ''), 'base64')
  }
  throw new RangeError(`not a PEM ${labels[0]}`)
}

/** DER as PEM with a trailing newline. */
export function toPem (bytes: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${bytes.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`
}

/** The fields of a certificate's tbsCertificate (RFC 5280 §4.1), and the tbsCertificate itself. */
export function certificateFields (cert: Buffer) {
  const tbs = children(cert, readElement(cert, 0))[0]!
  const fields = children(cert, tbs)
  const v = fields[0]?.tag === 0xa0 ? 1 : 0
  const [serial, , issuer, validity, subject, spki] = fields.slice(v)
  if (!serial || !issuer || !validity || !subject || !spki) throw new RangeError('DER: not a certificate')
  return { tbs, serial, issuer, validity, subject, spki, spkiBytes: encoded(cert, spki), extensions: fields.find((el) => el.tag === 0xa3) }
}

/** Extensions (a SEQUENCE of Extension) as [oid, critical, extnValue content element]. */
export function extensionsOf (buf: Buffer, sequence: Element): Array<{ oid: string, critical: boolean, value: Element }> {
  return children(buf, sequence).map((ext) => {
    const [id, ...rest] = children(buf, ext)
    const value = rest[rest.length - 1]
    if (!id || !value || value.tag !== 0x04) throw new RangeError('DER: bad extension')
    return { oid: oidText(buf, id), critical: rest.length === 2 && buf[rest[0]!.start] !== 0, value }
  })
}

/** The common names (2.5.4.3) of a Name, in order. */
export function commonNames (buf: Buffer, name: Element): string[] {
  const out: string[] = []
  for (const rdn of children(buf, name)) {
    for (const atv of children(buf, rdn)) {
      const [type, value] = children(buf, atv)
      if (type && value && oidText(buf, type) === '2.5.4.3') out.push(stringText(buf, value))
    }
  }
  return out
}

const GENERAL_NAME_TYPES = ['otherName', 'email', 'dns', 'x400Address', 'directoryName', 'ediPartyName', 'url', 'ip', 'registeredId']

/**
 * The entries of the GeneralNames SEQUENCE at `at` (a subjectAltName value): DNS names and IP
 * addresses with their text, any other kind by its name alone.
 */
export function generalNameEntries (buf: Buffer, at: number): Array<{ kind: string, value?: string }> {
  return children(buf, readElement(buf, at)).map((name) => {
    if (name.tag === 0x82) return { kind: 'dns', value: content(buf, name).toString('ascii') }
    if (name.tag === 0x87) return { kind: 'ip', value: ipText(content(buf, name)) }
    return { kind: GENERAL_NAME_TYPES[name.tag & 0x1f] ?? 'unknown' }
  })
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

/** The text of an iPAddress general name's 4 or 16 bytes (IPv6 uncompressed; normalizeName canonicalises it). */
export function ipText (bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.')
  if (bytes.length !== 16) throw new RangeError(`DER: an IP address of ${bytes.length} bytes`)
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  return groups.join(':')
}
