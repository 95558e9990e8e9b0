import https from 'node:https'
import http from 'node:http'

/** GET a URL and return its body; `ca` adds trust for https. Throws on a non-2xx status. */
export function getText (url: string, ca?: string): Promise<string> {
  return request('GET', url, undefined, ca)
}

/** POST a JSON body (challtestsrv's management API style). */
export function postJson (url: string, body: unknown, ca?: string): Promise<string> {
  return request('POST', url, JSON.stringify(body), ca)
}

function request (method: string, url: string, body: string | undefined, ca?: string): Promise<string> {
  const mod = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, ca, agent: false, timeout: 5000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${url}: ${res.statusCode} ${text}`))
        else resolve(text)
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timeout`)))
    req.on('error', reject)
    req.end(body)
  })
}
