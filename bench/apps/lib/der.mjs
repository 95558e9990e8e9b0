// Just enough DER to re-sign a certificate template: element headers and the outer Certificate.

/** The element at `offset`: where its content starts and ends. */
export function element (der, offset) {
  const first = der[offset + 1]
  if (first < 0x80) return { start: offset + 2, end: offset + 2 + first }
  const bytes = first & 0x7f
  let length = 0
  for (let i = 0; i < bytes; i++) length = length * 256 + der[offset + 2 + i]
  const start = offset + 2 + bytes
  return { start, end: start + length }
}

function lengthBytes (length) {
  if (length < 0x80) return Buffer.from([length])
  const out = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) out.unshift(n & 0xff)
  return Buffer.from([0x80 | out.length, ...out])
}

/** A DER element with this tag and content. */
export function encode (tag, content) {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content])
}

/** Splits a DER certificate into its TBSCertificate and signatureAlgorithm elements (whole, headers included). */
export function splitCertificate (der) {
  const outer = element(der, 0)
  const tbs = element(der, outer.start)
  const alg = element(der, tbs.end)
  return { tbs: der.subarray(outer.start, tbs.end), algorithm: der.subarray(tbs.end, alg.end) }
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } */
export function assembleCertificate (tbs, algorithm, signature) {
  return encode(0x30, Buffer.concat([tbs, algorithm, encode(0x03, Buffer.concat([Buffer.from([0]), signature]))]))
}

export function toPem (der) {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`
}
