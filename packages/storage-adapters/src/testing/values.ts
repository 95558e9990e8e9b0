/**
 * Self-describing test values: the first 4 bytes hold a seed, the rest is a pseudo-random
 * stream derived from it. So any value read back can be checked to be one whole write
 * (`seedOf` returns its seed) rather than a mix of two writes or a truncation.
 */
export function makeValue (seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size)
  const words = new Uint32Array(out.buffer, 0, Math.floor(size / 4))
  let x = (Math.imul(seed ^ 0x9e3779b9, 2654435761) ^ size) >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x >>> 0
  }
  for (let i = words.length * 4; i < size; i++) out[i] = i & 0xff
  if (size >= 4) new DataView(out.buffer).setUint32(0, seed >>> 0, true)
  return out
}

/** The seed of a value made by makeValue, or null when the bytes are not exactly such a value. */
export function seedOf (bytes: Uint8Array | null): number | null {
  if (!bytes || bytes.byteLength < 4) return null
  const seed = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true)
  return Buffer.from(makeValue(seed, bytes.byteLength)).equals(bytes) ? seed : null
}

export const MiB = 1024 * 1024

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
