// allowedOrigins: WebSocket upgrades from a disallowed Origin are refused with 403 before the
// upgrade (CORS does not cover WebSockets); an allowed Origin, or none (non-browser
// clients), connects.
import { test } from 'tap'
import WebSocket from 'ws'
import { startServer } from './fixtures/server.js'
import { echoes, negotiate, open, openWebSocket, request } from './fixtures/wire.js'

const path = '/hubs/scenario'
const GOOD = 'https://app.example.com'

/** Tries an upgrade; resolves with the HTTP status that refused it, or 101 when it opened. */
async function upgrade (url: string, origin: string | undefined): Promise<{ status: number, body: string, ws?: WebSocket }> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, origin === undefined ? {} : { origin })
    ws.once('open', () => { resolve({ status: 101, body: '', ws }) })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    ws.once('error', (err) => { if (ws.readyState !== WebSocket.CLOSED) reject(err) })
  })
}

test('a disallowed Origin gets 403 before the upgrade; the connection token stays usable', async (t) => {
  const { app, base } = await startServer(t, { plugin: { allowedOrigins: [GOOD, 'http://localhost:5173'] } })
  const wsBase = base.replace('http', 'ws') + path
  const neg = await negotiate(base, path)
  for (const origin of ['https://evil.example.com', 'null', 'https://app.example.com.evil.net', 'HTTPS://APP.EXAMPLE.COM', `${GOOD}/`]) {
    const res = await upgrade(`${wsBase}?id=${neg.connectionToken}`, origin)
    t.equal(res.status, 403, `Origin ${origin}: 403`)
    t.equal(res.body, 'Origin not allowed')
  }
  // Also with skipNegotiation: no connection is created for a refused upgrade
  const before = app.signalr.connectionCount
  t.equal((await upgrade(wsBase, 'https://evil.example.com')).status, 403, 'skipNegotiation from a disallowed Origin: 403')
  t.equal(app.signalr.connectionCount, before, 'and no connection was created')
  // The refusals did not claim the connection: an allowed Origin can still use the token
  const good = await openWebSocket(`${wsBase}?id=${neg.connectionToken}`, 'json', neg.connectionId, { origin: GOOD })
  await good.send('{"protocol":"json","version":1}\u001e')
  t.equal((await good.next()).toString(), '{}\u001e', 'an allowed Origin connects')
  t.ok(await echoes(good))
  good.destroy()
})

test('an allowed Origin and a request without Origin connect', async (t) => {
  const { base } = await startServer(t, { plugin: { allowedOrigins: [GOOD] } })
  const withOrigin = await open('ws', base, path, { headers: { origin: GOOD } })
  t.ok(await echoes(withOrigin), 'allowed Origin')
  withOrigin.destroy()
  const noOrigin = await open('ws', base, path)
  t.ok(await echoes(noOrigin), 'no Origin header (a non-browser client)')
  noOrigin.destroy()
  const skip = await upgrade(base.replace('http', 'ws') + path, GOOD)
  t.equal(skip.status, 101, 'skipNegotiation from an allowed Origin')
  skip.ws?.terminate()
})

test('allowedOrigins governs WebSocket upgrades only; HTTP requests are for CORS to decide', async (t) => {
  const { base } = await startServer(t, { plugin: { allowedOrigins: [GOOD] } })
  const res = await request(`${base}${path}/negotiate?negotiateVersion=1`, { method: 'POST', headers: { origin: 'https://evil.example.com' } })
  t.equal(res.status, 200, 'negotiate answers whatever the Origin: browsers enforce CORS on the response')
  t.notOk(res.headers['access-control-allow-origin'], 'and the plugin adds no CORS headers of its own')
  const neg = JSON.parse(res.body.toString()) as { connectionToken: string }
  const poll = await request(`${base}${path}?id=${neg.connectionToken}`, { headers: { origin: 'https://evil.example.com' } })
  t.equal(poll.status, 200, 'nor does a Long Polling request')
})

test('without allowedOrigins every Origin connects; a per-hub list overrides the plugin one', async (t) => {
  const open1 = await startServer(t)
  const any = await upgrade(open1.base.replace('http', 'ws') + path, 'https://anything.example')
  t.equal(any.status, 101, 'no list: any Origin')
  any.ws?.terminate()
  const perHub = await startServer(t, { plugin: { allowedOrigins: [GOOD] }, route: { allowedOrigins: ['https://other.example'] } })
  const wsUrl = perHub.base.replace('http', 'ws') + path
  t.equal((await upgrade(wsUrl, GOOD)).status, 403, 'the plugin-level Origin is not in the hub list')
  const ok = await upgrade(wsUrl, 'https://other.example')
  t.equal(ok.status, 101, 'the hub-level Origin connects')
  ok.ws?.terminate()
})
