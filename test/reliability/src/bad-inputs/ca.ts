import { memoryStorage } from '@fastify-acme/core'
import { uniqueLoopbackAddress, type AcmeFault } from '@fastify-acme/harness'
import { pointName, tag } from '../lib/env.js'
import { outcomeOf, type BadInputCase } from './table.js'
import { pluginApp } from './plugin-app.js'

/** Orders `names` through the proxy with `faults` active (every matching request, not once). */
/** With `fresh`, the faults are active from the first request (the directory is cached once fetched). */
function caCase (name: string, code: string, faults: AcmeFault[], names = [`ca-${tag('')}.example.test`], fresh = false): BadInputCase {
  return {
    group: 'ca',
    name,
    expect: { code },
    run: async (ctx) => {
      const address = uniqueLoopbackAddress()
      for (const n of names) if (/^[a-z]/.test(n)) await pointName(ctx.env, n, address)
      const app = await pluginApp(ctx.logFile, {
        directoryUrl: ctx.proxy.directoryUrl,
        caBundle: ctx.env.pebble.caBundle,
        termsOfServiceAgreed: true,
        storage: memoryStorage(),
        challenges: { http01: { port: ctx.env.pebble.httpPort, host: address } },
      })
      try {
        if (!fresh) await app.acme.obtain([names[0]!]).catch(() => {}) // registers the account first, without faults
        for (const fault of faults) ctx.proxy.inject({ times: Number.POSITIVE_INFINITY, ...fault })
        return await outcomeOf(() => app.acme.obtain(names.slice(1).length > 0 ? names.slice(1) : [names[0]!], { force: true }))
      } finally {
        ctx.proxy.clearFaults()
        await app.close()
      }
    },
  }
}

const json = (status: number, body: string, type = 'application/json') => ({ respond: { status, headers: { 'content-type': type }, body } })

export const caCases: BadInputCase[] = [
  caCase('garbage JSON answering newOrder', 'ERR_ACME_CA_BAD_RESPONSE', [{ resource: 'newOrder', action: json(201, '{"status": "pending", "identifiers": [') }]),
  caCase('an HTML page answering the directory', 'ERR_ACME_CA_BAD_RESPONSE', [{ resource: 'directory', action: json(200, '<html>maintenance</html>', 'text/html') }], undefined, true),
  caCase('the certificate as text/html', 'ERR_ACME_CA_BAD_RESPONSE', [{ resource: 'certificate', action: json(200, '<html><body>not a certificate</body></html>', 'text/html') }]),
  caCase('the certificate as JSON', 'ERR_ACME_CA_BAD_RESPONSE', [{ resource: 'certificate', action: json(200, '{"certificate": true}') }]),
  caCase('an order object without authorizations', 'ERR_ACME_CA_BAD_RESPONSE', [{ resource: 'newOrder', action: json(201, '{"status":"pending"}') }]),
  caCase('500 with an HTML body on finalize, every time', 'ERR_ACME_CA_PROBLEM', [{ resource: 'finalize', action: json(500, '<html>oops</html>', 'text/html') }]),
  caCase('an IP address the CA does not support', 'ERR_ACME_CA_PROBLEM', [{
    resource: 'newOrder', action: { status: 400, problemType: 'rejectedIdentifier', detail: 'IP address identifiers are not supported' },
  }], ['ca-first.example.test', '192.0.2.7']),
  caCase('a wildcard without DNS-01', 'ERR_ACME_NO_CHALLENGE', [], ['ca-first.example.test', `*.wild-${tag('')}.example.test`]),
]
