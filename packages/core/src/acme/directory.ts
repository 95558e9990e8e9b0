/** Directory URL shortcuts accepted by `directoryUrl`. */
export const DIRECTORY_SHORTCUTS: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  'google-staging': 'https://dv.acme-v02.test-api.pki.goog/directory',
}

/** Production CAs with a staging twin: retries after a failure go there first (CertMagic does the same). */
const STAGING_OF: Record<string, string> = {
  [DIRECTORY_SHORTCUTS.letsencrypt!]: DIRECTORY_SHORTCUTS['letsencrypt-staging']!,
  [DIRECTORY_SHORTCUTS.google!]: DIRECTORY_SHORTCUTS['google-staging']!,
}

/** Expands a shortcut; other values are returned as given ('local' or a URL). */
export function resolveDirectoryUrl (value: string): string {
  return DIRECTORY_SHORTCUTS[value] ?? value
}

export const DIRECTORY_URL_EXPECTED = "'letsencrypt', 'letsencrypt-staging', 'zerossl', 'google', 'google-staging', 'local' or an https:// directory URL (http:// only on loopback)"

/**
 * Whether a resolved directory (after resolveDirectoryUrl) can be used: 'local', or an https://
 * URL; plain http only for a CA on this machine, like CertMagic (RFC 8555 requires HTTPS).
 */
export function isDirectoryUrl (directoryUrl: string): boolean {
  if (directoryUrl === 'local') return true
  let url: URL
  try { url = new URL(directoryUrl) } catch { return false }
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname))
}

function isLoopback (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

/** The staging directory for a production CA, when one is known. */
export function stagingDirectoryOf (directoryUrl: string): string | undefined {
  return STAGING_OF[directoryUrl]
}
