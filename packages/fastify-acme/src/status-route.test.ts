import { memoryStorage } from '@fastify-acme/core'
import { requireCommands } from '@fastify-acme/harness'
import { services } from '@fastify-acme/harness/vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pointName, uniqueLoopbackAddress } from '../test/fixtures.js'
import fastifyAcme, { acmeHttps } from './index.js'

const TOKEN = 'Bearer status-secret'
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url))
const SCREENSHOT = path.join(ARTIFACTS, 'status-page.png')

const authHook = async (request: { headers: Record<string, unknown> }, reply: { code: (n: number) => { send: (b: string) => unknown } }) => {
  if (request.headers.authorization !== TOKEN) await reply.code(401).send('unauthorized')
}

describe('status page', () => {
  const { pebble } = services()
  const apps: FastifyInstance[] = []
  afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())) })

  it('refuses to register without an auth hook, and answers 401 without the token', async () => {
    const bare = Fastify()
    apps.push(bare)
    const err = await bare.register(fastifyAcme, { env: false, storage: memoryStorage(), statusPage: {} as never }).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })
    expect((err as Error).message).toContain('statusPage.onRequest')
    const notAFunction = Fastify()
    apps.push(notAFunction)
    const err2 = await notAFunction.register(fastifyAcme, { env: false, storage: memoryStorage(), statusPage: { onRequest: 'admin' as never } }).then(() => null, (e: unknown) => e)
    expect(err2).toMatchObject({ code: 'ERR_ACME_INVALID_OPTION' })

    const app = Fastify()
    apps.push(app)
    await app.register(fastifyAcme, { env: false, storage: memoryStorage(), challenges: { http01: { port: false } }, statusPage: { onRequest: authHook, path: '/ops/acme' } })
    expect((await app.inject({ url: '/ops/acme' })).statusCode).toBe(401)
    const ok = await app.inject({ url: '/ops/acme', headers: { authorization: TOKEN } })
    expect(ok.statusCode).toBe(200)
    expect(ok.headers['content-security-policy']).toContain("default-src 'none'")
    expect(ok.body).toContain('No certificate is managed.')
  })

  describe('in headless Chromium', () => {
    let context: BrowserContext
    let profile: string
    const address = uniqueLoopbackAddress()
    const names: Record<'san' | 'single' | 'failing', string[]> = { san: [], single: [], failing: [] }

    beforeAll(async () => {
      requireCommands([{ command: 'chromium', debianPackage: 'chromium' }])
      names.san = [await pointName(address, 'status-a'), await pointName(address, 'www-status-a')]
      names.single = [await pointName(address, 'status-b')]
      names.failing = [await pointName(uniqueLoopbackAddress(), 'status-down')] // nothing answers its HTTP-01 challenge
      profile = mkdtempSync(path.join(tmpdir(), 'fastify-acme-chromium-'))
      context = await chromium.launchPersistentContext(profile, {
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: [
          '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync',
          `--host-resolver-rules=${[...names.san, ...names.single].map((n) => `MAP ${n} ${address}`).join(', ')}, EXCLUDE localhost`,
        ],
        ignoreHTTPSErrors: true, // Pebble's root is not in Chromium's store; the served certificate is checked below
        viewport: { width: 1200, height: 900 },
      })
    }, 60_000)
    afterAll(async () => {
      await context?.close()
      if (profile) rmSync(profile, { recursive: true, force: true })
    })

    it('shows each certificate as a timeline and the recent events, with no external request', async () => {
      const app = Fastify({ https: acmeHttps() })
      apps.push(app)
      await app.register(fastifyAcme, {
        directoryUrl: pebble.directoryUrl,
        caBundle: pebble.caBundle,
        termsOfServiceAgreed: true,
        env: false,
        domains: [names.san, names.single, names.failing],
        storage: memoryStorage(),
        challenges: { http01: { port: pebble.httpPort, host: address } },
        statusPage: { onRequest: authHook, refreshSeconds: false },
      })
      const settled = new Promise<void>((resolve) => {
        let left = 3
        const done = () => { if (--left === 0) resolve() }
        app.acme.on('obtained', done).on('failed', done)
      })
      await app.listen({ port: 0, host: address })
      await settled
      await app.acme.renew(names.single[0]!) // joins the order settling after 'obtained'
      await app.acme.renew(names.single[0]!, { force: true })
      const port = (app.server.address() as { port: number }).port

      const page = await context.newPage()
      const requests: string[] = []
      page.on('request', (r) => requests.push(r.url()))
      await page.setExtraHTTPHeaders({ authorization: TOKEN })
      const url = `https://${names.san[0]}:${port}/.acme/status`
      const res = await page.goto(url)
      expect(res?.status()).toBe(200)
      expect((await res!.securityDetails())?.subjectName).toBe(names.san[0])
      expect(requests).toEqual([url])

      const list = app.acme.list()
      for (const names_ of [names.san, names.single]) {
        const info = list.find((c) => c.names[0] === names_[0])!
        const card = page.locator(`article.cert[data-name="${names_[0]}"]`)
        await expect.poll(() => card.getAttribute('data-state')).toBe('ok')
        expect(await card.locator('.facts code').first().textContent()).toBe(info.serial)
        const x = async (selector: string) => {
          const box = await card.locator(selector).boundingBox()
          expect(box, selector).not.toBeNull()
          return box!.x + box!.width / 2
        }
        const [issued, now, renewal, expiry] = [await x('.marker-issued'), await x('.marker-now'), await x('.marker-renewal'), await x('.marker-expiry')]
        expect(issued).toBeLessThanOrEqual(now + 1)
        expect(now).toBeLessThan(renewal)
        expect(renewal).toBeLessThan(expiry)
        const window = await card.locator('rect.window').boundingBox()
        expect(Math.abs(window!.x - (renewal - 1.5))).toBeLessThan(3) // the policy window starts at the renewal time ...
        expect(Math.abs(window!.x + window!.width - expiry)).toBeLessThan(3) // ... and ends at expiry
        expect(await card.locator('.marker-expiry').getAttribute('data-time')).toBe(info.notAfter!.toISOString())
        expect(await card.locator('.marker-renewal').getAttribute('data-reason')).toBe(info.renewal!.reason)
        expect((await card.locator('svg.timeline').boundingBox())!.width).toBeGreaterThan(800)
      }
      expect(await page.locator(`article.cert[data-name="${names.san[0]}"] .also`).textContent()).toContain(names.san[1])
      expect(await page.locator('.marker-issued').first().evaluate('(el) => getComputedStyle(el).stroke')).not.toBe('none')

      const failing = page.locator(`article.cert[data-name="${names.failing[0]}"]`)
      expect(await failing.getAttribute('data-state')).toBe('missing')
      expect(await failing.locator('svg').count()).toBe(0)
      expect(await failing.locator('.error strong').textContent()).toMatch(/^ERR_ACME_/)
      // trouble first
      expect(await page.locator('article.cert').first().getAttribute('data-name')).toBe(names.failing[0])

      const rows = page.locator('section.events tbody tr')
      const events = await rows.evaluateAll((trs) => trs.map((tr) => ({ type: tr.getAttribute('data-type'), names: tr.children[2]!.textContent })))
      expect(events[0]).toEqual({ type: 'renewed', names: names.single[0] })
      expect(events).toContainEqual({ type: 'obtained', names: names.san.join(', ') })
      expect(events).toContainEqual({ type: 'failed', names: names.failing[0] })
      expect(events.filter((e) => e.type === 'locked').length).toBeGreaterThanOrEqual(4)
      expect(await page.content()).not.toContain('PRIVATE KEY')

      mkdirSync(ARTIFACTS, { recursive: true })
      await page.screenshot({ path: SCREENSHOT, fullPage: true })
      expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000)
      await page.close()
    }, 60_000)
  })
})
