import type { CertificateInfo } from '../manager/manager.js'
import type { StatusEvent } from './event-log.js'
import { duration, escapeHtml, relativeTime, timeElement } from './format.js'
import { certificateCard, certificateState, type CertificateState } from './timeline.js'

/** What the status page shows. */
export interface StatusPageInput {
  /** the certificates, e.g. CertificateManager.list() */
  certificates: CertificateInfo[]
  /** recent events, newest first, e.g. managerEventLog(manager).entries() */
  events: StatusEvent[]
  /** the page's "now" (default: the current time) */
  now?: Date
  /** page title (default 'fastify-acme status') */
  title?: string
  /** reload the page every this many seconds, with no script (default 60; false: never) */
  refreshSeconds?: number | false
}

/**
 * Headers for the status page: it has no script and loads nothing, so the policy forbids
 * everything but inline styles, and nobody may frame or cache it.
 */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
})

/**
 * One self-contained HTML page (inline CSS and SVG, no script, no external asset, works
 * offline): each certificate as a timeline (issued, now, renewal window and selected renewal
 * time, expiry) with its last error, then the recent events. Every value is HTML-escaped.
 */
export function renderStatusPage (input: StatusPageInput): string {
  const now = input.now ?? new Date()
  const title = input.title ?? 'fastify-acme status'
  const refresh = input.refreshSeconds ?? 60
  const certs = [...input.certificates].sort((a, b) => order(a, now) - order(b, now) || a.names[0]!.localeCompare(b.names[0]!))
  const counts = new Map<CertificateState, number>()
  for (const cert of certs) counts.set(certificateState(cert, now), (counts.get(certificateState(cert, now)) ?? 0) + 1)
  const summary = [...counts].map(([state, n]) => `<span class="count state-${state}">${n} ${state}</span>`).join('')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh !== false && refresh > 0 ? `<meta http-equiv="refresh" content="${Math.round(refresh)}">` : ''}
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="page-head">
<h1>${escapeHtml(title)}</h1>
<p class="meta">${certs.length} certificate${certs.length === 1 ? '' : 's'} · generated ${timeElement(now)}</p>
<p class="summary">${summary}</p>
</header>
<main>
<section class="certificates" aria-label="Certificates">
${certs.length > 0 ? certs.map((cert) => certificateCard(cert, now)).join('\n') : '<p class="empty">No certificate is managed.</p>'}
</section>
<section class="events" aria-label="Recent events">
<h2>Recent events</h2>
${eventsTable(input.events, now)}
</section>
</main>
</body>
</html>
`
}

const STATE_ORDER: Record<CertificateState, number> = { expired: 0, failing: 1, missing: 2, due: 3, ok: 4 }

/** Trouble first, then the soonest expiry. */
function order (cert: CertificateInfo, now: Date): number {
  return STATE_ORDER[certificateState(cert, now)] * 1e15 + (cert.notAfter?.getTime() ?? 0) / 1e3
}

function eventsTable (events: StatusEvent[], now: Date): string {
  if (events.length === 0) return '<p class="empty">No event since the server started.</p>'
  const rows = events.map((e) => `<tr class="event event-${e.type}" data-type="${e.type}">
<td class="when">${timeElement(e.at)}<br><span class="dim">${relativeTime(e.at, now)}</span></td>
<td><span class="event-type">${e.type}</span></td>
<td>${e.names.map((n) => escapeHtml(n)).join(', ')}</td>
<td>${eventDetail(e)}</td>
</tr>`).join('\n')
  return `<table><thead><tr><th>Time</th><th>Event</th><th>Names</th><th>Details</th></tr></thead><tbody>
${rows}
</tbody></table>`
}

function eventDetail (e: StatusEvent): string {
  const serial = e.serial ? `serial <code>${escapeHtml(e.serial)}</code>` : ''
  switch (e.type) {
    case 'locked': return `issuance lock acquired after ${duration(e.waitMs ?? 0)}`
    case 'obtaining': return `${e.renewal ? 'renewal' : 'new certificate'} ordered at ${escapeHtml(e.issuer ?? '')}${e.forced ? ' (forced)' : ''}`
    case 'obtained':
    case 'renewed': return `${serial}${e.notAfter ? `, valid until ${timeElement(e.notAfter)}` : ''}${e.durationMs !== undefined ? `, in ${duration(e.durationMs)}` : ''}`
    case 'failed': {
      const next = e.nextAttemptAt === null ? 'attempts stopped' : e.nextAttemptAt ? `next attempt ${timeElement(e.nextAttemptAt)}` : ''
      return `<strong>${escapeHtml(e.error?.code ?? '')}</strong> ${escapeHtml(e.error?.message ?? '')}${next ? ` · ${next}` : ''}`
    }
    case 'revoked': return `${serial} revoked at the CA and deleted`
    case 'updated': return `now serving ${serial}${e.source === 'storage' ? ' (stored by another instance)' : ''}`
  }
}

const CSS = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--dim:#697386;--line:#dde1e7;--ok:#1f9d55;--due:#d69e2e;--fail:#d64545;--missing:#8a94a6;--life:#cfe8d9;--window:#f6d98b;--now:#2b6cb0}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--ink:#e6e9ef;--dim:#9aa3b2;--line:#2e343e;--life:#24523a;--window:#7a6222;--now:#63a4ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.page-head,main{max-width:1100px;margin:0 auto;padding:16px 20px}
h1{font-size:22px;margin:8px 0 2px}
h2{font-size:16px;margin:0}
.meta,.dim{color:var(--dim)}
.meta{margin:0 0 8px}
.summary{margin:0;display:flex;gap:8px;flex-wrap:wrap}
.count,.badge,.tag{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12px;font-weight:600;color:#fff;background:var(--missing)}
.tag{background:transparent;color:var(--dim);border:1px solid var(--line)}
.state-ok .badge,.count.state-ok{background:var(--ok)}
.state-due .badge,.count.state-due{background:var(--due)}
.state-failing .badge,.count.state-failing,.state-expired .badge,.count.state-expired{background:var(--fail)}
.cert{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--missing);border-radius:8px;padding:14px 16px;margin:0 0 14px}
.cert.state-ok{border-left-color:var(--ok)}.cert.state-due{border-left-color:var(--due)}
.cert.state-failing,.cert.state-expired,.cert.has-error{border-left-color:var(--fail)}
.cert.has-error .badge{background:var(--fail)}
.cert-head{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.also{margin:4px 0 0;color:var(--dim)}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:6px 18px;margin:10px 0}
.facts div{min-width:0}.facts dt{color:var(--dim);font-size:12px}.facts dd{margin:0;overflow-wrap:anywhere}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.timeline-figure{margin:8px 0 0}
.timeline{display:block;width:100%;height:40px}
.timeline .track{fill:var(--line)}
.timeline .lifetime{fill:var(--life)}
.timeline .window{fill:var(--window)}
.timeline .marker{stroke-width:3;vector-effect:non-scaling-stroke}
.marker-issued{stroke:var(--ok)}.marker-renewal{stroke:var(--due)}.marker-expiry{stroke:var(--fail)}
.marker-now{stroke:var(--now);stroke-dasharray:4 3}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;padding:0;margin:6px 0 0;font-size:12px;color:var(--dim)}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.key-issued i{background:var(--ok)}.key-renewal i{background:var(--due)}.key-expiry i{background:var(--fail)}.key-now i{background:var(--now)}.key-window i{background:var(--window)}
.error{margin:10px 0 0;padding:8px 10px;border-radius:6px;background:rgba(214,69,69,.1);overflow-wrap:anywhere}
.error strong{color:var(--fail)}
.empty{color:var(--dim)}
.events h2{margin:10px 0}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--dim);font-weight:600}
td.when{white-space:nowrap}
td:nth-child(3){min-width:14em}
td:nth-child(3),td:nth-child(4){overflow-wrap:break-word;word-break:break-word}
.event-type{font-weight:600}
.event-failed .event-type{color:var(--fail)}.event-obtained .event-type,.event-renewed .event-type{color:var(--ok)}
`
