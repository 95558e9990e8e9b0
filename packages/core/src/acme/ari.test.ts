import { describe, expect, it } from 'vitest'
import { parseRenewalInfo } from './ari.js'

describe('parseRenewalInfo (RFC 9773 §4.2)', () => {
  const now = Date.parse('2026-11-29T12:00:00Z')
  const body = (start: string, end: string) => ({ suggestedWindow: { start, end }, explanationURL: 'https://ca.example/why' })

  it('reads the window, the explanation and Retry-After (seconds, or 6 h when absent)', () => {
    const info = parseRenewalInfo(body('2026-12-10T00:00:00Z', '2026-12-11T00:00:00Z'), '3600', now)
    expect(info).toEqual({
      window: { start: new Date('2026-12-10T00:00:00Z'), end: new Date('2026-12-11T00:00:00Z') },
      explanationURL: 'https://ca.example/why',
      retryAfter: new Date(now + 3600_000),
    })
    expect(parseRenewalInfo(body('2026-12-10T00:00:00Z', '2026-12-11T00:00:00Z'), undefined, now).retryAfter).toEqual(new Date(now + 6 * 3600_000))
  })

  it('refuses a window whose end does not follow its start', () => {
    for (const [start, end] of [['2026-12-10T00:00:00Z', '2026-12-10T00:00:00Z'], ['2026-12-11T00:00:00Z', '2026-12-10T00:00:00Z'], ['soon', '2026-12-10T00:00:00Z']]) {
      expect(() => parseRenewalInfo(body(start!, end!), undefined, now)).toThrow(expect.objectContaining({ code: 'ERR_ACME_CA_BAD_RESPONSE' }))
    }
  })
})
