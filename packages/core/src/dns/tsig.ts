import { createHmac, timingSafeEqual } from 'node:crypto'
import { decodeName, encodeName, rcodeName, RecordClass, RecordType, type DecodedMessage } from './wire.js'

/** TSIG algorithms (RFC 8945 §6); hmac-sha256 is the one every server supports. */
export type TsigAlgorithm = 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512' | 'hmac-sha224' | 'hmac-sha1'

export const TSIG_ALGORITHMS: readonly TsigAlgorithm[] = ['hmac-sha256', 'hmac-sha384', 'hmac-sha512', 'hmac-sha224', 'hmac-sha1']

/** A TSIG key as BIND's `tsig-keygen`, Knot's `keymgr -t` and PowerDNS print it. */
export interface TsigKey {
  /** key name, e.g. 'acme-update' (a domain name; compared case-insensitively) */
  name: string
  algorithm: TsigAlgorithm
  /** the shared secret, raw bytes */
  secret: Buffer
}

const FUDGE_SECONDS = 300

function hmac (key: TsigKey): ReturnType<typeof createHmac> {
  return createHmac(key.algorithm.slice(5), key.secret)
}

/** RFC 8945 §4.3.3: the TSIG variables that go into the MAC after the message. */
function variables (key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  const fixed = Buffer.alloc(16)
  fixed.writeUInt16BE(RecordClass.ANY, 0)
  fixed.writeUInt32BE(0, 2)
  writeTime(fixed, 6, timeSigned)
  fixed.writeUInt16BE(fudge, 12)
  fixed.writeUInt16BE(error, 14)
  const otherLen = Buffer.alloc(2)
  otherLen.writeUInt16BE(other.length)
  const name = encodeName(key.name, true)
  const algorithm = encodeName(key.algorithm, true)
  return Buffer.concat([name, fixed.subarray(0, 6), algorithm, fixed.subarray(6), otherLen, other])
}

function writeTime (buf: Buffer, offset: number, seconds: number): void {
  buf.writeUInt16BE(Math.floor(seconds / 2 ** 32), offset)
  buf.writeUInt32BE(seconds % 2 ** 32, offset + 2)
}

/**
 * Signs an encoded request: appends the TSIG record and counts it in ARCOUNT. Returns the
 * signed bytes and the MAC, which the response's MAC covers (RFC 8945 §4.3.1).
 */
export function signRequest (message: Buffer, key: TsigKey, now = Date.now()): { signed: Buffer, mac: Buffer } {
  const timeSigned = Math.floor(now / 1000)
  const mac = hmac(key).update(message).update(variables(key, timeSigned, FUDGE_SECONDS, 0, Buffer.alloc(0))).digest()
  const rdataFixed = Buffer.alloc(10)
  writeTime(rdataFixed, 0, timeSigned)
  rdataFixed.writeUInt16BE(FUDGE_SECONDS, 6)
  rdataFixed.writeUInt16BE(mac.length, 8)
  const trailer = Buffer.alloc(6)
  trailer.writeUInt16BE(message.readUInt16BE(0), 0) // original ID
  const rdata = Buffer.concat([encodeName(key.algorithm, true), rdataFixed, mac, trailer])
  const head = Buffer.alloc(10)
  head.writeUInt16BE(RecordType.TSIG, 0)
  head.writeUInt16BE(RecordClass.ANY, 2)
  head.writeUInt32BE(0, 4)
  head.writeUInt16BE(rdata.length, 8)
  const signed = Buffer.concat([message, encodeName(key.name, true), head, rdata])
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10)
  return { signed, mac }
}

interface TsigRecord {
  algorithm: string
  timeSigned: number
  fudge: number
  mac: Buffer
  originalId: number
  error: number
  other: Buffer
}

function parseTsig (data: Buffer): TsigRecord {
  const { name: algorithm, next } = decodeName(data, 0)
  const timeSigned = data.readUInt16BE(next) * 2 ** 32 + data.readUInt32BE(next + 2)
  const fudge = data.readUInt16BE(next + 6)
  const macSize = data.readUInt16BE(next + 8)
  const mac = data.subarray(next + 10, next + 10 + macSize)
  let pos = next + 10 + macSize
  const originalId = data.readUInt16BE(pos)
  const error = data.readUInt16BE(pos + 2)
  const otherLen = data.readUInt16BE(pos + 4)
  pos += 6
  return { algorithm, timeSigned, fudge, mac, originalId, error, other: data.subarray(pos, pos + otherLen) }
}

/**
 * Checks a response to a signed request. Returns null when it is properly signed, else why
 * not: unsigned, a TSIG error from the server (BADKEY, BADSIG, BADTIME), a wrong MAC or a
 * time outside the fudge window.
 */
export function verifyResponse (raw: Buffer, decoded: DecodedMessage, requestMac: Buffer, key: TsigKey, now = Date.now()): string | null {
  const last = decoded.additional.at(-1)
  if (!last || last.type !== RecordType.TSIG || decoded.lastAdditionalOffset === undefined) return 'the response is not signed'
  let tsig: TsigRecord
  try {
    tsig = parseTsig(last.data)
  } catch {
    return 'the response has a malformed TSIG record'
  }
  if (tsig.error !== 0) return `TSIG error ${rcodeName(tsig.error)}`
  if (last.name.toLowerCase() !== key.name.replace(/\.$/, '').toLowerCase() || tsig.algorithm.toLowerCase() !== key.algorithm) {
    return 'the response is signed with another key'
  }
  const unsigned = Buffer.from(raw.subarray(0, decoded.lastAdditionalOffset))
  unsigned.writeUInt16BE(tsig.originalId, 0)
  unsigned.writeUInt16BE(decoded.additional.length - 1, 10)
  const prefix = Buffer.alloc(2)
  prefix.writeUInt16BE(requestMac.length)
  const expected = hmac(key).update(prefix).update(requestMac).update(unsigned)
    .update(variables(key, tsig.timeSigned, tsig.fudge, tsig.error, tsig.other)).digest()
  if (tsig.mac.length !== expected.length || !timingSafeEqual(tsig.mac, expected)) return 'the response MAC does not verify'
  if (Math.abs(Math.floor(now / 1000) - tsig.timeSigned) > tsig.fudge) return 'the response was signed outside the allowed time window (clock skew?)'
  return null
}

/** The TSIG error code a server put in an unsigned error response (BADKEY, BADSIG, BADTIME), if any. */
export function tsigErrorOf (decoded: DecodedMessage): number | undefined {
  const last = decoded.additional.at(-1)
  if (last?.type !== RecordType.TSIG) return undefined
  try {
    return parseTsig(last.data).error || undefined
  } catch {
    return undefined
  }
}
