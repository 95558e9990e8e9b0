/**
 * A DNS provider for DNS-01: publishes and removes TXT records. Providers for RFC 2136,
 * Cloudflare and Route 53 ship as subpath exports; any object with these methods works.
 */
export interface Dns01Provider {
  /**
   * Adds (does not replace) a TXT record `value` at `fqdn` (e.g. `_acme-challenge.example.com`,
   * no trailing dot). Several values may exist at one name at once (example.com and
   * *.example.com in one order).
   */
  present (fqdn: string, value: string, signal?: AbortSignal): Promise<void>
  /** Removes exactly that TXT value; removing one that is gone succeeds. */
  cleanup (fqdn: string, value: string, signal?: AbortSignal): Promise<void>
}
