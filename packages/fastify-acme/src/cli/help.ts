import type { CommandName } from './args.js'

const GLOBAL = `Options for every command:
  --storage <url>      file:///var/lib/acme | file:./dir | redis://host:6379/0 | s3://bucket/prefix?region=..
                       (env ACME_STORAGE; default file:./acme-data); an encrypted storage needs
                       its keyring in ACME_STORAGE_KEYS=id:base64key[,...] (environment only)
  --directory <url>    CA directory URL or letsencrypt, letsencrypt-staging, zerossl, google, local
                       (env ACME_DIRECTORY_URL; default: the CA that issued the certificate)
  --email <address>    ACME account email (env ACME_EMAIL; default: the one account stored for the CA)
  --ca-bundle <pem>    PEM file or text trusted for the CA's HTTPS endpoint (env ACME_CA_BUNDLE)
  --eab-kid <kid>      External Account Binding key id (env ACME_EAB_KID); the HMAC key is read
                       from ACME_EAB_HMAC_KEY only, so it never shows in ps or shell history
  --agree-tos          agree to the CA's terms of service (env ACME_TERMS_OF_SERVICE_AGREED=true)
  --json               print one JSON document on stdout (errors too: {"ok":false,"error":{...}})
  -v, --verbose        log what the certificate manager does to stderr (JSON lines; never keys)
  -h, --help           show help`

const EXIT_CODES = `Exit codes:
  0  done (doctor: no problem found)
  1  failed: CA, storage or file error (the message says which)
  2  usage error: unknown command or option, missing argument, bad value or configuration
  3  doctor found at least one problem
  4  no stored certificate has that name`

export const MAIN_HELP = `fastify-acme: operate the certificates of fastify-acme, in any storage it uses

Usage: fastify-acme <command> [options]

Commands:
  list                     stored certificates: names, issuer, expiry, days left, next renewal and
                           why (ari, ratio or emergency), last error
  renew <name> [--force]   renew now if due (always with --force), through the certificate's CA
  revoke <name> --yes      revoke at the CA and delete from storage
  import <name> --cert chain.pem --key key.pem
                           store a certificate obtained elsewhere (it is then served and renewed)
  export <name> [--out dir]
                           write fullchain.pem, cert.pem, chain.pem, privkey.pem (or the chain to stdout)
  doctor                   check ports 80/443, DNS for every stored name, storage, and the CA
  help [command]           this help, or a command's

${GLOBAL}

${EXIT_CODES}

Examples:
  fastify-acme list --storage redis://localhost:6379/0
  ACME_STORAGE=file:///var/lib/acme fastify-acme renew example.com --force --json
  fastify-acme doctor --ports 8080,8443 --name example.com
`

export const COMMAND_HELP: Record<CommandName, string> = {
  list: `Usage: fastify-acme list [--storage url] [--json]

Reads every certificate and its failure state from storage (no CA is contacted). NEXT RENEWAL
is the ARI time stored with the certificate, or the default policy (1/3 of the lifetime left,
1/2 for certificates of 10 days or less, emergency at 1/20). With --json: {"ok", "storage",
"certificates": [{"name", "names", "status", "issuer", "serial", "notBefore", "notAfter",
"daysLeft", "renewal": {"at", "reason"}, "failures", "lastError", "nextAttemptAt"}]}.`,
  renew: `Usage: fastify-acme renew <name> [--force] [--http-port port [--http-host addr]] [--key-type type]

Renews the stored certificate that has <name> if it is due, or now with --force, through a
certificate manager on the same storage (under the cluster lock, like the app itself).
HTTP-01 tokens are written to storage, so a running app sharing that storage answers the
CA; without one, --http-port starts a listener here (80 for a real CA). --key-type: ec-p256,
ec-p384, rsa-2048 or rsa-4096 (default: ACME_KEY_TYPE, as for the apps, else the
certificate's). With --json: {"ok", "name",
"renewed", "serialBefore", "serialAfter", "notAfter", "renewal"}.`,
  revoke: `Usage: fastify-acme revoke <name> --yes [--reason code]

Revokes the stored certificate that has <name> at its CA with the account that ordered it,
then deletes it (chain and key) from storage. Running apps that still manage a name of it order
a replacement (one per cluster, under the issuance lock). --reason is an
RFC 5280 code: 0 unspecified (default), 1 keyCompromise, 4 superseded, 5 cessationOfOperation.`,
  import: `Usage: fastify-acme import <name> --cert fullchain.pem --key privkey.pem [--chain chain.pem] [--force]

Stores a certificate obtained elsewhere (certbot, greenlock, a commercial CA) so that apps
serve it and renew it when due. Its names are the certificate's, <name> first; the key must
match (EC P-256/P-384 or RSA 2048/4096). With --directory, renewals use ARI and 'replaces' at
that CA. --force replaces a stored certificate, or stores one whose names another stored
certificate covers. While an app orders the same certificate, waits for it (at most 120 s).`,
  export: `Usage: fastify-acme export <name> [--out dir [--force]] [--include-key]

With --out, writes fullchain.pem, cert.pem, chain.pem and privkey.pem (mode 0600) into dir;
--force overwrites. Without --out, prints the PEM chain on stdout, and the private key only
with --include-key. With --json, the PEM text is in "certificate" (and "privateKey").`,
  doctor: `Usage: fastify-acme doctor [--ports 80,443] [--host addr] [--name name]... [--dns-server ip[:port]] [--timeout-ms ms]

Checks, each ok, warn, fail or skip:
  port:N     this user can bind port N on --host (default ::), or it is in use and accepts
             connections (your app)
  dns:NAME   every stored name (and --name) has A/AAAA records (via --dns-server when given)
  storage    write, read back, delete and lock/unlock round trip
  ca:URL     the CA directory (--directory, and each CA in storage) is reachable and trusted
             with --ca-bundle, and whether it requires External Account Binding
Exits 3 when a check fails. With --json: {"ok", "storage", "checks": [{"name", "status", "message", "details"}]}.`,
  help: 'Usage: fastify-acme help [command]',
}

export function helpText (command: CommandName | undefined): string {
  if (!command || command === 'help') return MAIN_HELP
  return `${COMMAND_HELP[command]}\n\n${GLOBAL}\n\n${EXIT_CODES}\n`
}
