// Auth through Fastify: @fastify/jwt in a hook guards negotiate and every transport request,
// with the token in the Authorization header or the access_token query parameter.
import { Writable } from 'node:stream'
import fastifyJwt from '@fastify/jwt'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { test } from 'tap'
import Type from 'typebox'
import signalr, { accessToken, defineHub, redactAccessToken } from '../index.js'
import { buildClient, connect, type TransportName } from './fixtures/client.js'
import { rawConnect, RS } from './fixtures/raw-client.js'

const hub = defineHub({
  methods: {
    WhoAmI: { args: [], handler: (ctx) => ctx.userId },
    AdminOnly: { args: [Type.String()], authorize: (ctx) => ctx.userId === 'admin', handler: (_ctx, s) => `ok ${s}` },
    Notify: { args: [Type.String(), Type.String()], async handler (ctx, user, text) { await ctx.clients.user(user).send('Note', text) } }
  }
})

async function secureServer (t: { teardown: (fn: () => unknown) => void }) {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done() } })
  const app = Fastify({ logger: { level: 'info', stream }, forceCloseConnections: true })
  await app.register(fastifyJwt, { secret: 'test-secret', verify: { extractToken: accessToken } })
  await app.register(signalr)
  app.hub('/hubs/secure', hub, {
    async onRequest (request: FastifyRequest, reply: FastifyReply) {
      try {
        await request.jwtVerify()
      } catch {
        return await reply.code(401).send({ error: 'Unauthorized' })
      }
    },
    userId: (request) => (request.user as { sub?: string }).sub
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const base = `http://127.0.0.1:${port}`
  return { app, base, url: `${base}/hubs/secure`, lines, sign: (sub: string) => app.jwt.sign({ sub }) }
}

for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as TransportName[]) {
  test(`${transport}: a valid token connects and names the user; the token never reaches the logs`, async (t) => {
    const { url, lines, sign } = await secureServer(t)
    const token = sign('alice')
    const c = await connect(t, url, { transport, accessToken: token })
    t.equal(await c.invoke('WhoAmI'), 'alice', 'the userId resolver reads the verified token')
    const bob = await connect(t, url, { transport, accessToken: sign('bob') })
    const note = new Promise((resolve) => { c.on('Note', resolve) })
    await bob.invoke('Notify', 'alice', 'for alice')
    t.equal(await note, 'for alice', 'clients.user reaches the user named by the token')
    await c.stop()
    const log = lines.join('')
    t.match(log, /incoming request/, 'requests are logged')
    t.notOk(log.includes(token), 'the access token is not in the logs')
    // The connection token authorizes every transport request: a secret as well
    const ids = [...log.matchAll(/[?&]id=([^&"\s]*)/g)].map((m) => m[1])
    t.ok(ids.length > 0, 'transport requests are logged')
    t.same([...new Set(ids)], ['[redacted]'], 'the connection token (?id=) is redacted from every request line')
  })
}

test('a missing or invalid token gets 401 at negotiate, and the official client reports it', async (t) => {
  const { url } = await secureServer(t)
  const none = buildClient(url)
  await t.rejects(none.start(), { message: /Status code '401'/ })
  const bad = buildClient(url, { accessToken: 'not-a-jwt' })
  await t.rejects(bad.start(), { message: /Status code '401'/ })
})

test('the hooks also guard the transport requests, not only negotiate', async (t) => {
  const { base, sign } = await secureServer(t)
  const token = sign('carol')
  const neg = await (await fetch(`${base}/hubs/secure/negotiate?negotiateVersion=1`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).json() as { connectionToken: string }
  const wsBase = `${base.replace('http', 'ws')}/hubs/secure?id=${neg.connectionToken}`
  const refused = await rawConnect(t, wsBase).catch((err: Error) => err)
  t.match(String(refused), /401/, 'a WebSocket upgrade without a token is refused before the upgrade')
  const poll = await fetch(`${base}/hubs/secure?id=${neg.connectionToken}`)
  t.equal(poll.status, 401, 'a long poll without a token is refused')
  const viaQuery = await rawConnect(t, `${wsBase}&access_token=${encodeURIComponent(token)}`)
  viaQuery.send(`{"protocol":"json","version":1}${RS}`)
  t.equal(await viaQuery.next(), `{}${RS}`, 'the browser form (access_token in the query) is accepted')
})

test('per-method authorization refuses a call with an error Completion', async (t) => {
  const { url, sign } = await secureServer(t)
  const user = await connect(t, url, { accessToken: sign('mallory') })
  await t.rejects(user.invoke('AdminOnly', 'x'), { message: "Failed to invoke 'AdminOnly' because user is unauthorized" })
  const admin = await connect(t, url, { accessToken: sign('admin') })
  t.equal(await admin.invoke('AdminOnly', 'x'), 'ok x')
})

test('accessToken() and redactAccessToken()', async (t) => {
  const req = (headers: Record<string, string>, query: Record<string, string>) => ({ headers, query }) as unknown as FastifyRequest
  t.equal(accessToken(req({ authorization: 'Bearer abc' }, { access_token: 'q' })), 'abc', 'the header wins')
  t.equal(accessToken(req({}, { access_token: 'q' })), 'q')
  t.equal(accessToken(req({ authorization: 'Basic xyz' }, {})), undefined)
  t.equal(redactAccessToken('/hubs/x?id=1&access_token=secret.jwt&y=2'), '/hubs/x?id=[redacted]&access_token=[redacted]&y=2')
  t.equal(redactAccessToken('/hubs/x?uid=1&id=tok&_=5'), '/hubs/x?uid=1&id=[redacted]&_=5', 'only the id parameter itself')
})
