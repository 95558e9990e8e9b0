// The acme-client peer: client.auto() for one name with a tiny HTTP-01 server, as its README
// shows (ECDSA keys, like ours). Trust for Pebble goes on acme-client's global axios.
// BENCH_CONFIG = {"name","directoryUrl","caBundleFile","email","host","httpPort"}. Sends "certificate".
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import acme from 'acme-client'
import { send } from './lib/control.mjs'

const config = JSON.parse(process.env.BENCH_CONFIG)
const PREFIX = '/.well-known/acme-challenge/'
acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(config.caBundleFile, 'utf8') })

const tokens = new Map()
const server = http.createServer((req, res) => {
  const body = req.url?.startsWith(PREFIX) ? tokens.get(req.url.slice(PREFIX.length)) : undefined
  res.writeHead(body ? 200 : 404).end(body ?? 'not found')
})
await new Promise((resolve) => server.listen(config.httpPort, config.host, resolve))

const client = new acme.Client({ directoryUrl: config.directoryUrl, accountKey: await acme.crypto.createPrivateEcdsaKey() })
const [, csr] = await acme.crypto.createCsr({ altNames: [config.name] }, await acme.crypto.createPrivateEcdsaKey())
const certificate = await client.auto({
  csr,
  email: config.email,
  termsOfServiceAgreed: true,
  skipChallengeVerification: true,
  challengePriority: ['http-01'],
  challengeCreateFn: async (authz, challenge, keyAuthorization) => { tokens.set(challenge.token, keyAuthorization) },
  challengeRemoveFn: async (authz, challenge) => { tokens.delete(challenge.token) },
})
send('certificate', { bytes: certificate.length })
server.close()
process.disconnect?.()
