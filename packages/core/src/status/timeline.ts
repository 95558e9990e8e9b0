import type { CertificateInfo } from '../manager/manager.js'
import { escapeHtml, formatUtc, relativeTime, timeElement } from './format.js'

/** How a certificate is doing, as the status page colours it. */
export type CertificateState = 'ok' | 'due' | 'failing' | 'expired' | 'missing'

export function certificateState (cert: CertificateInfo, now: Date): CertificateState {
  if (cert.status === 'missing') return 'missing'
  if (cert.status === 'expired' || (cert.notAfter && cert.notAfter <= now)) return 'expired'
  if (cert.lastError) return 'failing'
  if (cert.renewal && cert.renewal.at <= now) return 'due'
  return 'ok'
}

const STATE_LABEL: Record<CertificateState, string> = {
  ok: 'valid',
  due: 'renewal due',
  failing: 'renewal failing',
  expired: 'expired',
  missing: 'no certificate yet',
}

const REASON_LABEL = { ari: "CA's ARI window", ratio: 'share of lifetime left', emergency: 'emergency: little lifetime left' } as const

/** Width of the timeline's coordinate system; the SVG stretches it to the card. */
const WIDTH = 1000

/** One certificate: its facts, a timeline (issued, renewal window, selected renewal time, expiry, now), its last error. */
export function certificateCard (cert: CertificateInfo, now: Date): string {
  const name = cert.names[0]!
  const state = certificateState(cert, now)
  const others = cert.names.slice(1)
  return `<article class="cert state-${state}${cert.lastError ? ' has-error' : ''}" data-name="${escapeHtml(name)}" data-status="${cert.status}" data-state="${state}">
<header class="cert-head"><h2>${escapeHtml(name)}</h2><span class="badge">${STATE_LABEL[state]}</span>${cert.onDemand ? '<span class="tag">on demand</span>' : ''}</header>
${others.length > 0 ? `<p class="also">also ${others.map((n) => `<span>${escapeHtml(n)}</span>`).join(', ')}</p>` : ''}
${facts(cert, now)}
${cert.notBefore && cert.notAfter ? timeline(cert, now) : '<p class="empty">Nothing is served for these names yet.</p>'}
${cert.lastError ? lastError(cert, now) : ''}
</article>`
}

function facts (cert: CertificateInfo, now: Date): string {
  const rows: Array<[string, string]> = []
  if (cert.issuer) rows.push(['Issuer', `${escapeHtml(cert.issuer.commonName || cert.issuer.key)} <span class="dim">(${escapeHtml(cert.issuer.key)})</span>`])
  if (cert.serial) rows.push(['Serial', `<code>${escapeHtml(cert.serial)}</code>`])
  if (cert.notAfter) rows.push([cert.notAfter > now ? 'Expires' : 'Expired', `${timeElement(cert.notAfter)} <span class="dim">${relativeTime(cert.notAfter, now)}</span>`])
  if (cert.renewal) {
    rows.push(['Renewal', `${timeElement(cert.renewal.at)} <span class="dim">${relativeTime(cert.renewal.at, now)} · ${REASON_LABEL[cert.renewal.reason]}</span>`])
  }
  if (rows.length === 0) return ''
  return `<dl class="facts">${rows.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('')}</dl>`
}

interface Mark { kind: 'issued' | 'renewal' | 'expiry' | 'now', at: Date, label: string }

function timeline (cert: CertificateInfo, now: Date): string {
  const issued = cert.notBefore!
  const expiry = cert.notAfter!
  const window = renewalWindow(cert)
  const start = Math.min(issued.getTime(), now.getTime())
  const end = Math.max(expiry.getTime(), now.getTime())
  const pad = Math.max(1, end - start) * 0.03
  const x = (date: Date) => round(((date.getTime() - (start - pad)) / (end - start + 2 * pad)) * WIDTH)
  const marks: Mark[] = [
    { kind: 'issued', at: issued, label: 'Issued' },
    ...(cert.renewal ? [{ kind: 'renewal' as const, at: cert.renewal.at, label: cert.renewal.reason === 'ari' ? 'Selected renewal time' : 'Renewal time' }] : []),
    { kind: 'expiry', at: expiry, label: 'Expiry' },
    { kind: 'now', at: now, label: 'Now' },
  ]
  const svg = [
    `<rect class="track" x="0" y="16" width="${WIDTH}" height="8"/>`,
    `<rect class="lifetime" x="${x(issued)}" y="12" width="${round(x(expiry) - x(issued))}" height="16" data-start="${issued.toISOString()}" data-end="${expiry.toISOString()}"/>`,
    window
      ? `<rect class="window" x="${x(window.start)}" y="12" width="${Math.max(2, round(x(window.end) - x(window.start)))}" height="16" data-start="${window.start.toISOString()}" data-end="${window.end.toISOString()}" data-kind="${window.kind}"/>`
      : '',
    ...marks.map((m) => `<line class="marker marker-${m.kind}" x1="${x(m.at)}" x2="${x(m.at)}" y1="${m.kind === 'now' ? 2 : 6}" y2="${m.kind === 'now' ? 38 : 34}" data-time="${m.at.toISOString()}"${m.kind === 'renewal' ? ` data-reason="${cert.renewal!.reason}"` : ''}><title>${m.label}: ${formatUtc(m.at)}</title></line>`),
  ].join('')
  const label = `Timeline of ${cert.names[0]}: issued ${formatUtc(issued)}, expires ${formatUtc(expiry)}`
  const key = (m: Mark | undefined) => m ? `<li class="key-${m.kind}"><i></i>${m.label} ${timeElement(m.at)}</li>` : ''
  const find = (kind: Mark['kind']) => marks.find((m) => m.kind === kind)
  const legend = [
    key(find('issued')),
    key(find('now')),
    window ? `<li class="key-window"><i></i>${window.kind === 'ari' ? 'ARI window' : 'Renewal window'} ${timeElement(window.start)} – ${timeElement(window.end)}</li>` : '',
    key(find('renewal')),
    key(find('expiry')),
  ].join('')
  return `<figure class="timeline-figure"><svg class="timeline" viewBox="0 0 ${WIDTH} 40" preserveAspectRatio="none" role="img" aria-label="${escapeHtml(label)}">${svg}</svg><ul class="legend">${legend}</ul></figure>`
}

/** The CA's ARI window, else from the renewal time to expiry (retries happen in between). */
function renewalWindow (cert: CertificateInfo): { start: Date, end: Date, kind: 'ari' | 'policy' } | undefined {
  if (cert.ari) {
    const start = new Date(cert.ari.window.start)
    const end = new Date(cert.ari.window.end)
    if (!Number.isNaN(start.getTime()) && !Number.isNaN(end.getTime())) return { start, end, kind: 'ari' }
  }
  if (cert.renewal && cert.notAfter) return { start: cert.renewal.at, end: cert.notAfter, kind: 'policy' }
  return undefined
}

function lastError (cert: CertificateInfo, now: Date): string {
  const e = cert.lastError!
  const next = cert.nextAttemptAt === null
    ? 'attempts stopped (30 days of failures)'
    : cert.nextAttemptAt ? `next attempt ${timeElement(cert.nextAttemptAt)} <span class="dim">${relativeTime(cert.nextAttemptAt, now)}</span>` : ''
  return `<p class="error"><strong>${escapeHtml(e.code)}</strong> ${escapeHtml(e.message)} <span class="dim">· ${relativeTime(e.at, now)}</span>${next ? ` · ${next}` : ''}</p>`
}

function round (n: number): number {
  return Math.round(n * 10) / 10
}
