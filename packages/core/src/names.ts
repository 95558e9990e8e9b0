import net from 'node:net'
import { domainToASCII } from 'node:url'
import { AcmeError, ErrorCodes, describe } from './errors.js'

/** An ACME identifier (RFC 8555 §9.7.7, RFC 8738 for IP addresses). */
export interface Identifier {
  type: 'dns' | 'ip'
  value: string
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

function invalid (name: unknown, why: string): never {
  throw new AcmeError(ErrorCodes.INVALID_IDENTIFIER, `invalid name ${describe(name)}: ${why}`)
}

/**
 * Normalises a name as it goes into a certificate: lower case, IDNs to punycode, no trailing
 * dot; IPv6 in canonical form. Throws ERR_ACME_INVALID_IDENTIFIER naming the value otherwise.
 * A wildcard is allowed only as the whole leftmost label.
 */
export function normalizeName (name: unknown): string {
  if (typeof name !== 'string') invalid(name, 'not a string')
  let value = name.trim()
  if (value === '') invalid(name, 'empty')
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1)
  const ipVersion = net.isIP(value)
  if (ipVersion === 4) return value
  if (ipVersion === 6) return canonicalIPv6(value)
  if (value.endsWith('.')) value = value.slice(0, -1)
  const wildcard = value.startsWith('*.')
  const rest = wildcard ? value.slice(2) : value
  if (rest.includes('*')) invalid(name, 'a wildcard may only be the whole leftmost label')
  // URL host parsing would decode it, and read numeric forms as IPv4 (0x7f.1 is 127.0.0.1)
  if (rest.includes('%')) invalid(name, 'contains "%" (percent-escapes are not part of a DNS name)')
  const ascii = domainToASCII(rest)
  if (ascii === '') invalid(name, 'not a valid domain name')
  if (net.isIP(ascii)) invalid(name, `reads as the IP address ${ascii}; write that instead`)
  const full = wildcard ? `*.${ascii}` : ascii
  if (full.length > 253) invalid(name, `longer than 253 characters (${full.length})`)
  const labels = ascii.split('.')
  for (const label of labels) {
    if (!LABEL.test(label)) invalid(name, `label "${label}" is not a valid DNS label`)
  }
  return full
}

function canonicalIPv6 (value: string): string {
  // URL parsing gives the RFC 5952 form: lower case, zeros compressed
  return new URL(`http://[${value}]/`).hostname.slice(1, -1)
}

export function isIpAddress (name: string): boolean {
  return net.isIP(name) !== 0
}

export function isWildcard (name: string): boolean {
  return name.startsWith('*.')
}

export function identifierOf (name: string): Identifier {
  return { type: isIpAddress(name) ? 'ip' : 'dns', value: name }
}

/**
 * Normalises a list of names for one certificate: each normalised, duplicates refused, order
 * kept (the first name is the certificate's primary name and its storage key).
 */
export function normalizeNames (names: unknown): string[] {
  if (!Array.isArray(names) || names.length === 0) {
    throw new AcmeError(ErrorCodes.INVALID_IDENTIFIER, `a certificate needs a non-empty list of names, got ${describe(names)}`)
  }
  const out: string[] = []
  for (const raw of names) {
    const name = normalizeName(raw)
    if (out.includes(name)) invalid(raw, `listed twice (as "${name}")`)
    out.push(name)
  }
  if (out.length > 100) throw new AcmeError(ErrorCodes.INVALID_IDENTIFIER, `a certificate holds at most 100 names, got ${out.length}`)
  return out
}

/** Whether a certificate name (possibly a wildcard) covers the SNI `servername`. */
export function nameMatches (certName: string, servername: string): boolean {
  if (certName === servername) return true
  if (!isWildcard(certName)) return false
  const dot = servername.indexOf('.')
  return dot > 0 && servername.slice(dot + 1) === certName.slice(2)
}
