// The peer for handshakes/s: plain node:https with one static certificate (ECDSA P-256 leaf +
// intermediate, like every managed certificate). BENCH_CONFIG = {"bundle","host","port"}.
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { commonCommands, send, serveCommands } from './lib/control.mjs'

const config = JSON.parse(process.env.BENCH_CONFIG)
const bundle = JSON.parse(readFileSync(config.bundle, 'utf8'))
const server = https.createServer({ key: bundle.privateKey, cert: bundle.certificate }, (req, res) => res.end('ok'))
server.listen(config.port, config.host, () => {
  send('listening')
  send('loaded')
})
serveCommands(commonCommands)
