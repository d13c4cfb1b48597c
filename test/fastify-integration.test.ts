// Living inside an existing Fastify app: what app.signalr shows, @fastify/websocket registered
// by the application before or after the plugin (with its own WebSocket routes), app.hub()
// after start, prefixes, per-hub route options, the errors onDisconnected sees, and headers
// that hooks set on the reply reaching the Server-Sent Events stream.
import { Writable } from 'node:stream'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyInstance, type FastifyTypeProvider } from 'fastify'
import { test } from 'tap'
import type { Static, TSchema } from 'typebox'
import WebSocket from 'ws'
import signalr, { defineHub } from '../index.js'
import { connect, nextCall } from './fixtures/client.js'
import { listen } from './fixtures/listen.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { scenarioHub } from './fixtures/scenario-hub.js'
import { until } from './fixtures/until.js'

/** The app's own WebSocket route, as @fastify/websocket's README writes one. */
function echoRoute (app: FastifyInstance): void {
  app.get('/own-ws', { websocket: true }, (socket) => {
    socket.on('message', (data: Buffer) => { socket.send(`own: ${data.toString()}`) })
  })
}

async function ownEcho (base: string): Promise<string> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/own-ws`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const reply = new Promise<string>((resolve) => { ws.once('message', (d: Buffer) => { resolve(d.toString()) }) })
  ws.send('ping')
  const text = await reply
  ws.close()
  return text
}

test('app.signalr shows the hubs and the counts, not the machinery', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  app.hub('/hubs/chat', scenarioHub)
  const api = app.signalr as unknown as Record<string, unknown>
  const names = new Set<string>([...Object.keys(api), ...Object.getOwnPropertyNames(Object.getPrototypeOf(api))])
  names.delete('constructor')
  t.same([...names].sort(), ['connectionCount', 'hub', 'paths'])
  for (const internal of ['addHub', 'createConnection', 'closeAll', 'forget', 'connection', 'hubs', 'byToken']) {
    t.equal(api[internal], undefined, `no ${internal}`)
  }
  t.same(app.signalr.paths, ['/hubs/chat'])
  t.equal(app.signalr.connectionCount, 0)
  t.equal(app.signalr.hub('/hubs/chat').path, '/hubs/chat')
})

for (const order of ['before', 'after'] as const) {
  test(`@fastify/websocket registered by the app ${order} fastify-signalr: its routes work, hubs work, every client gets its Close`, async (t) => {
    const app = Fastify({ forceCloseConnections: true })
    const warnings: string[] = []
    if (order === 'before') await app.register(websocket)
    await app.register(signalr)
    if (order === 'after') await app.register(websocket)
    echoRoute(app)
    app.hub('/hubs/chat', scenarioHub)
    await app.listen({ port: 0, host: '127.0.0.1' })
    app.log.warn = ((msg: string) => { warnings.push(String(msg)) }) as never
    const address = app.server.address()
    const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`

    t.equal(await ownEcho(base), 'own: ping', "the app's own { websocket: true } route answers")
    const c = await connect(t, `${base}/hubs/chat`, { transport: 'WebSockets' })
    t.equal(await c.invoke('Echo', 'over ws'), 'over ws', 'the hub answers over WebSockets')
    t.equal(await ownEcho(base), 'own: ping', 'and the own route still does, with a hub connection open')
    const raw = await rawJsonConnection(t, base, '/hubs/chat')
    const closed = new Promise<Error | undefined>((resolve) => { c.onclose(resolve) })

    await app.close()
    t.equal(await raw.next(), `{"type":7,"allowReconnect":true}${RS}`, 'the Close message went out before the socket closed')
    t.equal((await raw.closed).code, 1000, 'then a normal close')
    t.equal(await closed, undefined, 'the official client closed without an error')
    t.same(warnings, [], 'no warning about lost Close messages')
  })
}

test('a hub mapped before @fastify/websocket is registered upgrades too', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(signalr)
  app.hub('/hubs/chat', scenarioHub)
  await app.register(websocket)
  echoRoute(app)
  const base = await listen(t, app)
  const c = await connect(t, `${base}/hubs/chat`, { transport: 'WebSockets' })
  t.equal(await c.invoke('Echo', 'x'), 'x')
  t.equal(await ownEcho(base), 'own: ping')
})

test('without @fastify/websocket an upgrade to a path that is not a hub gets a plain 404', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(signalr)
  app.hub('/hubs/chat', scenarioHub)
  const base = await listen(t, app)
  const ws = new WebSocket(`${base.replace('http', 'ws')}/nowhere`)
  const status = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
    ws.once('open', () => { resolve(101) })
  })
  t.equal(status, 404)
})

for (const when of ['ready', 'listen'] as const) {
  test(`app.hub() after ${when}() is refused with a clear error and leaves nothing behind`, async (t) => {
    const app = Fastify()
    t.teardown(async () => { await app.close() })
    await app.register(signalr)
    app.hub('/hubs/first', scenarioHub)
    if (when === 'ready') await app.ready()
    else await app.listen({ port: 0, host: '127.0.0.1' })
    t.throws(() => app.hub('/hubs/late', scenarioHub), {
      code: 'FST_SIGNALR_HUB_AFTER_START',
      message: "Cannot map a hub at '/hubs/late': the app has already started (ready() or listen()). Call app.hub() before that, as for any route."
    })
    t.same(app.signalr.paths, ['/hubs/first'], 'the refused path is not listed')
    t.throws(() => app.signalr.hub('/hubs/late'), { code: 'FST_SIGNALR_UNKNOWN_HUB' })
    const res = await app.inject({ method: 'POST', url: '/hubs/late/negotiate?negotiateVersion=1' })
    t.equal(res.statusCode, 404, 'and has no route')
  })
}

test('under a prefix, app.signalr.hub() takes the path clients use', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(signalr)
  await app.register(async function api (scope) {
    scope.hub('/hubs/chat', scenarioHub)
  }, { prefix: '/api' })
  app.post('/notify', async () => {
    await app.signalr.hub('/api/hubs/chat').clients.all.send('Broadcast', 'from a route')
    return { sent: true }
  })
  const base = await listen(t, app)
  const c = await connect(t, `${base}/api/hubs/chat`)
  t.same(app.signalr.paths, ['/api/hubs/chat'])
  t.equal(app.signalr.hub('/api/hubs/chat/').path, '/api/hubs/chat', 'a trailing slash is the same path')
  t.throws(() => app.signalr.hub('/hubs/chat'), { code: 'FST_SIGNALR_UNKNOWN_HUB', message: "No hub is mapped at path '/hubs/chat'" })
  const got = nextCall(c, 'Broadcast')
  await fetch(`${base}/notify`, { method: 'POST' })
  t.same(await got, ['from a route'])
  t.equal(await app.signalr.hub('/api/hubs/chat').connectionCount(), 1)
  t.throws(() => { app.hub('/api/hubs/chat', scenarioHub) }, { code: 'FST_SIGNALR_HUB_AFTER_START' })
})

test('the same hub path under two prefixes is two hubs; twice under one prefix is refused', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  await app.register(async (scope) => { scope.hub('/hubs/chat', scenarioHub) }, { prefix: '/a' })
  await app.register(async (scope) => {
    scope.hub('/hubs/chat', scenarioHub)
    t.throws(() => scope.hub('/hubs/chat/', scenarioHub), { code: 'FST_SIGNALR_DUPLICATE_HUB', message: "A hub is already mapped at path '/b/hubs/chat'" })
  }, { prefix: '/b' })
  await app.ready()
  t.same(app.signalr.paths, ['/a/hubs/chat', '/b/hubs/chat'])
})

test('per-hub route options: logLevel, config and constraints reach every route of the hub', async (t) => {
  const lines: Array<{ msg?: string, level: number, url?: string, req?: { url?: string } }> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const app = Fastify({ logger: { level: 'info', stream }, forceCloseConnections: true })
  await app.register(signalr)
  const configs: unknown[] = []
  app.addHook('onRequest', async (request) => { configs.push(request.routeOptions.config) })
  app.hub('/hubs/quiet', scenarioHub, { logLevel: 'warn', config: { area: 'realtime' } })
  app.hub('/hubs/loud', scenarioHub)
  app.hub('/hubs/hosted', scenarioHub, { constraints: { host: 'rt.example.com' } })
  await app.ready()
  t.teardown(async () => { await app.close() })

  lines.length = 0
  const quiet = await app.inject({ method: 'POST', url: '/hubs/quiet/negotiate?negotiateVersion=1' })
  t.equal(quiet.statusCode, 200)
  t.same(lines.filter((l) => l.msg === 'incoming request'), [], 'logLevel warn: no request log lines')
  t.match(configs.pop(), { area: 'realtime' }, 'config is the route config hooks see')
  const put = await app.inject({ method: 'PUT', url: '/hubs/quiet' })
  t.equal(put.statusCode, 405)
  t.match(configs.pop(), { area: 'realtime' }, 'on the 405 routes too')
  t.same(lines.filter((l) => l.msg === 'incoming request'), [])

  const loud = await app.inject({ method: 'POST', url: '/hubs/loud/negotiate?negotiateVersion=1' })
  t.equal(loud.statusCode, 200)
  t.equal(lines.filter((l) => l.msg === 'incoming request').length, 1, 'a hub without logLevel logs as the app does')

  const other = await app.inject({ method: 'POST', url: '/hubs/hosted/negotiate?negotiateVersion=1', headers: { host: 'www.example.com' } })
  t.equal(other.statusCode, 404, 'constraints: another host does not reach the hub')
  const right = await app.inject({ method: 'POST', url: '/hubs/hosted/negotiate?negotiateVersion=1', headers: { host: 'rt.example.com' } })
  t.equal(right.statusCode, 200, 'the constrained host does')
})

test('the errors onDisconnected sees carry no HTTP statusCode', async (t) => {
  const errors: Array<Error | undefined> = []
  const hub = defineHub({ methods: {}, onDisconnected (_ctx, error) { errors.push(error) } })
  const app = Fastify({ forceCloseConnections: true })
  await app.register(signalr)
  app.hub('/hubs/h', hub)
  const base = await listen(t, app)
  // A protocol violation, then a cut socket
  const bad = await rawJsonConnection(t, base, '/hubs/h')
  bad.send(`not json${RS}`)
  await until(() => errors.length === 1)
  const cut = await rawJsonConnection(t, base, '/hubs/h')
  cut.ws.terminate()
  await until(() => errors.length === 2)
  t.match(errors, [{ code: 'FST_SIGNALR_INVALID_MESSAGE' }, { code: 'FST_SIGNALR_CONNECTION_CLOSED' }])
  for (const e of errors) t.equal((e as Error & { statusCode?: number }).statusCode, undefined, `${(e as Error & { code: string }).code}: no statusCode`)
})

test('headers hooks set on the reply reach the Server-Sent Events stream', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(signalr)
  app.addHook('onRequest', async (_request, reply) => {
    void reply.header('x-from-hook', 'yes')
    void reply.header('access-control-allow-origin', 'https://app.example.com')
    // The stream's own headers win over what a hook set
    void reply.header('content-type', 'text/html')
  })
  app.hub('/hubs/chat', scenarioHub)
  const base = await listen(t, app)
  const neg = await (await fetch(`${base}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { connectionToken: string }
  const controller = new AbortController()
  const res = await fetch(`${base}/hubs/chat?id=${neg.connectionToken}`, { headers: { accept: 'text/event-stream' }, signal: controller.signal })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-from-hook'), 'yes')
  t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com')
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  controller.abort()
  const c = await connect(t, `${base}/hubs/chat`, { transport: 'ServerSentEvents' })
  t.equal(await c.invoke('Echo', 'sse'), 'sse', 'and the official client connects over it')
})

// Compile-time: app.hub() keeps the instance's type provider
interface SchemaProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown
  serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown
}
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
test('app.hub() returns the instance it was called on, type provider and all', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  const typed = app.withTypeProvider<SchemaProvider>()
  const back = typed.hub('/hubs/typed', scenarioHub)
  const same: Equal<typeof back, typeof typed> = true
  t.ok(same)
  t.equal(back, typed)
})
