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

/** The staging directory for a production CA, when one is known. */
export function stagingDirectoryOf (directoryUrl: string): string | undefined {
  return STAGING_OF[directoryUrl]
}
