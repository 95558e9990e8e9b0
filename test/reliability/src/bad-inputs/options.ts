import { generatePrivateKey } from '@fastify-acme/core'
import { outcomeOf, type BadInputCase, type Outcome } from './table.js'
import { pluginApp } from './plugin-app.js'

/** Registers the plugin with `options`; a registration that succeeds reports the names it manages. */
export async function register (logFile: string, options: Record<string, unknown>): Promise<Outcome> {
  let names: string[] | undefined
  const outcome = await outcomeOf(async () => {
    const app = await pluginApp(logFile, options)
    names = app.acme.list().flatMap((c) => c.names)
    await app.close()
  })
  return names ? { normalised: names } : outcome
}

const option = (name: string, options: Record<string, unknown>, code = 'ERR_ACME_INVALID_OPTION'): BadInputCase =>
  ({ group: 'options', name, expect: { code }, run: ({ logFile }) => register(logFile, options) })

// ACME_STORAGE cases pass no storage (code options win over the environment); the others keep
// the in-memory one, so that no default ./acme-data is created
const env = (name: string, vars: Record<string, string>, code = 'ERR_ACME_INVALID_OPTION'): BadInputCase =>
  ({ group: 'environment', name, expect: { code }, run: ({ logFile }) => register(logFile, { env: vars, ...(vars.ACME_STORAGE ? { storage: undefined } : {}) }) })

const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example.test`

export const optionCases: BadInputCase[] = [
  option('email of the wrong type (a number)', { email: 42 }),
  option('termsOfServiceAgreed as a string', { termsOfServiceAgreed: 'yes' }),
  option('domains as a string, not a list', { domains: 'example.test' }),
  option('an empty domain list', { domains: [] }, 'ERR_ACME_INVALID_IDENTIFIER'),
  option('a name longer than 253 characters', { domains: [long] }, 'ERR_ACME_INVALID_IDENTIFIER'),
  option('a label longer than 63 characters', { domains: [`${'x'.repeat(64)}.example.test`] }, 'ERR_ACME_INVALID_IDENTIFIER'),
  option('a name with a space and a slash', { domains: ['bad name/x.example.test'] }, 'ERR_ACME_INVALID_IDENTIFIER'),
  option('a wildcard that is not the leftmost label', { domains: ['www.*.example.test'] }, 'ERR_ACME_INVALID_IDENTIFIER'),
  option('duplicates after normalisation', { domains: ['dup.example.test', 'DUP.example.test.'] }, 'ERR_ACME_INVALID_IDENTIFIER'),
  { group: 'options', name: 'upper-case names normalise', expect: { normalised: ['www.example.test'] }, run: ({ logFile }) => register(logFile, { domains: ['WWW.Example.TEST'] }) },
  { group: 'options', name: 'unicode names normalise to punycode', expect: { normalised: ['xn--bcher-kva.example.test'] }, run: ({ logFile }) => register(logFile, { domains: ['Bücher.example.test'] }) },
  option('an unknown key type', { keyType: 'ec-p521' }),
  option('an ftp:// directory URL', { directoryUrl: 'ftp://ca.example.test/dir' }),
  option('a negative lock TTL', { lockTtlMs: -1 }),
  option('on-demand without allow()', { onDemand: {} }),
  option('a storage that is not one', { storage: { get: 1 } }),
  option('EAB with a non-base64 HMAC key', { eab: { kid: 'kid', hmacKey: 'not base64 !!' } }),
  {
    group: 'options',
    name: 'a private key given as caBundle (never echoed)',
    expect: { code: 'ERR_ACME_INVALID_OPTION' },
    run: async ({ logFile }) => register(logFile, { caBundle: await generatePrivateKey('ec-p256') }),
  },
  {
    group: 'options',
    name: 'the HTTP-01 port as a string',
    expect: { code: 'ERR_ACME_INVALID_OPTION' },
    run: ({ logFile, env }) => register(logFile, { directoryUrl: env.pebble.directoryUrl, caBundle: env.pebble.caBundle, challenges: { http01: { port: 'eighty', host: '127.0.0.1' } } }),
  },
  {
    group: 'options',
    name: 'the HTTP-01 port out of range',
    expect: { code: 'ERR_ACME_INVALID_OPTION' },
    run: ({ logFile, env }) => register(logFile, { directoryUrl: env.pebble.directoryUrl, caBundle: env.pebble.caBundle, challenges: { http01: { port: 70_000, host: '127.0.0.1' } } }),
  },
]

export const environmentCases: BadInputCase[] = [
  env('ACME_HTTP_PORT not a number', { ACME_HTTP_PORT: 'eighty' }),
  env('ACME_STORAGE with an unknown scheme', { ACME_STORAGE: 'ftp://storage.example.test/acme' }),
  env('ACME_STORAGE with a bad parameter', { ACME_STORAGE: 'redis://127.0.0.1:1/0?lockTtlMs=soon' }),
  env('ACME_EAB_HMAC_KEY not base64url', { ACME_EAB_KID: 'kid', ACME_EAB_HMAC_KEY: 's3cr3t!not*base64' }),
  env('ACME_KEY_TYPE unknown', { ACME_KEY_TYPE: 'dsa-1024' }),
  env('ACME_DOMAINS with only separators', { ACME_DOMAINS: ';, ;,' }, 'ERR_ACME_INVALID_IDENTIFIER'),
  env('ACME_CA_BUNDLE naming a missing file', { ACME_CA_BUNDLE: '/nonexistent/ca.pem' }),
  env('ACME_TERMS_OF_SERVICE_AGREED not a boolean', { ACME_TERMS_OF_SERVICE_AGREED: 'maybe' }),
  env('ACME_DIRECTORY_URL not a URL', { ACME_DIRECTORY_URL: 'not a url' }),
]
