import { describe, expect, it } from 'vitest'
import { getText } from './http.js'
import { services } from './services.js'

describe('harness services', () => {
  it('pebble serves its directory over HTTPS trusted by the harness CA', async () => {
    const { pebble } = services()
    const dir = JSON.parse(await getText(pebble.directoryUrl, pebble.caBundle))
    expect(dir.newOrder).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//)
  })
})
