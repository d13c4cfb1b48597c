// POST {hub}/negotiate at the HTTP level: versions, ids, transports, errors, hooks.
import Fastify from 'fastify'
import { test } from 'tap'
import signalr from '../index.js'
import { scenarioHub } from './fixtures/scenario-hub.js'

async function build (t: { teardown: (fn: () => unknown) => void }, opts: Parameters<typeof signalr>[1] = {}, route = {}) {
  const app = Fastify()
  await app.register(signalr, opts)
  app.hub('/hubs/chat', scenarioHub, route)
  t.teardown(async () => { await app.close() })
  await app.ready()
  return app
}

test('v1: public connectionId, secret URL-safe connectionToken, transports in server order', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json()
  t.same(Object.keys(body), ['negotiateVersion', 'connectionId', 'connectionToken', 'availableTransports'], '.NET key order')
  t.equal(body.negotiateVersion, 1)
  t.match(body.connectionId, /^[A-Za-z0-9_-]{22}$/)
  t.match(body.connectionToken, /^[A-Za-z0-9_-]{22}$/, '16 random bytes, base64url')
  t.not(body.connectionId, body.connectionToken)
  t.same(body.availableTransports, [
    { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
    { transport: 'ServerSentEvents', transferFormats: ['Text'] },
    { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] }
  ])
})

test('every negotiation makes new ids', async (t) => {
  const app = await build(t)
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const body = (await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })).json()
    seen.add(body.connectionId)
    seen.add(body.connectionToken)
  }
  t.equal(seen.size, 40)
})

test('v0 (no version): no token; a higher version is answered with 1', async (t) => {
  const app = await build(t)
  const v0 = (await app.inject({ method: 'POST', url: '/hubs/chat/negotiate' })).json()
  t.equal(v0.negotiateVersion, 0)
  t.notOk('connectionToken' in v0)
  const v9 = (await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?NEGOTIATEVERSION=9' })).json()
  t.equal(v9.negotiateVersion, 1, 'keys are read case-insensitively, the version capped at 1')
})

test('a non-integer version gets the spec error with HTTP 200', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=abc' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { error: 'The client requested a non-integer protocol version.' })
  const neg = await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=-1' })
  t.same(neg.json(), { error: "The client requested version '-1', but the server does not support this version." })
})

test('other methods on negotiate get 405', async (t) => {
  const app = await build(t)
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'] as const) {
    const res = await app.inject({ method, url: '/hubs/chat/negotiate' })
    t.equal(res.statusCode, 405, method)
  }
})

test('availableTransports follows the transports and protocols options', async (t) => {
  const app = await build(t, { transports: ['LongPolling', 'WebSockets'] })
  const body = (await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })).json()
  t.same(body.availableTransports.map((x: { transport: string }) => x.transport), ['WebSockets', 'LongPolling'])
  const app2 = await build(t, { protocols: ['messagepack'] })
  const body2 = (await app2.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })).json()
  t.same(body2.availableTransports, [
    { transport: 'WebSockets', transferFormats: ['Binary'] },
    { transport: 'LongPolling', transferFormats: ['Binary'] }
  ], 'a binary-only hub is never offered SSE')
})

test('per-hub options override the plugin options', async (t) => {
  const app = await build(t, {}, { transports: ['WebSockets'] })
  const body = (await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })).json()
  t.same(body.availableTransports, [{ transport: 'WebSockets', transferFormats: ['Text', 'Binary'] }])
})

test('useStatefulReconnect is answered only when allowed and asked for', async (t) => {
  const off = await build(t)
  t.notOk('useStatefulReconnect' in (await off.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1&useStatefulReconnect=true' })).json())
  const on = await build(t, { allowStatefulReconnects: true })
  const asked = (await on.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1&useStatefulReconnect=true' })).json()
  t.equal(Object.keys(asked)[0], 'useStatefulReconnect')
  t.equal(asked.useStatefulReconnect, true)
  t.notOk('useStatefulReconnect' in (await on.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })).json())
})

test('the hub route hooks guard negotiate', async (t) => {
  const app = await build(t, {}, {
    onRequest: async (request: { headers: Record<string, unknown> }, reply: { code: (n: number) => { send: (b: unknown) => unknown } }) => {
      if (request.headers.authorization !== 'Bearer ok') return reply.code(401).send({ error: 'Unauthorized' })
    }
  })
  t.equal((await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })).statusCode, 401)
  const ok = await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1', headers: { authorization: 'Bearer ok' } })
  t.equal(ok.statusCode, 200)
})

test('a trailing slash on the hub path works', async (t) => {
  const app = await build(t)
  const get = await app.inject({ method: 'GET', url: '/hubs/chat/' })
  t.equal(get.statusCode, 400, 'the slash form routes to the hub (and asks for an id)')
})

test('minimumNegotiateVersion: 1 refuses v0 (whose public id is also its secret) with the spec error', async (t) => {
  const app = await build(t, { minimumNegotiateVersion: 1 })
  for (const url of ['/hubs/chat/negotiate', '/hubs/chat/negotiate?negotiateVersion=0']) {
    const res = await app.inject({ method: 'POST', url })
    t.equal(res.statusCode, 200, 'errors travel as JSON with 200')
    t.same(res.json(), { error: "The client requested version '0', but the server does not support this version." }, url)
  }
  const v1 = await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })
  t.equal(v1.json().negotiateVersion, 1)
  t.ok(typeof v1.json().connectionToken === 'string', 'v1 still negotiates')
  t.equal(app.signalr.connectionCount, 1, 'no connection was made for the refused ones')
})

test('the official client asking for v0 is refused by a hub that requires v1, and says why', async (t) => {
  const { startServer } = await import('./fixtures/server.js')
  const { buildClient } = await import('./fixtures/client.js')
  const { url } = await startServer(t, { plugin: { minimumNegotiateVersion: 1 } })
  // The client keeps a negotiateVersion already in the URL instead of adding its own
  const client = buildClient(`${url}?negotiateVersion=0`)
  const err = await client.start().then(() => undefined, (e: Error) => e)
  t.match(err?.message, /The client requested version '0', but the server does not support this version\./)
  const ok = buildClient(url)
  await ok.start()
  t.equal(ok.state, 'Connected', 'a v1 client connects')
  await ok.stop()
})

test('a WebSocket opened without negotiating gets a token nobody is told: its public id authorizes nothing', async (t) => {
  const { startServer } = await import('./fixtures/server.js')
  const { connect } = await import('./fixtures/client.js')
  const { app, base } = await startServer(t)
  const c = await connect(t, `${base}/hubs/scenario`, { transport: 'WebSockets', skipNegotiation: true })
  t.equal(await c.invoke('Echo', 'hi'), 'hi')
  const [id] = await app.signalr.hub('/hubs/scenario').connections()
  t.match(id, /^[A-Za-z0-9_-]{22}$/)
  // With negotiate v0 the id would be the token; here it opens nothing
  for (const [method, extra] of [['GET', '&_=1'], ['POST', ''], ['DELETE', '']] as const) {
    const res = await fetch(`${base}/hubs/scenario?id=${id}${extra}`, { method })
    t.equal(res.status, 404, `${method} with the public id: 404`)
  }
  t.equal(await c.invoke('Echo', 'still'), 'still', 'the connection itself is untouched')
})
