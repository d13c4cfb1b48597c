// The admin view over HTTP and with the official Node client: the application's hook guards
// the page, its assets and its hub; bad options fail at register; the snapshot lists the
// connections that are really there; the two actions do what they say, and bad input gets
// an error Completion.
import Fastify from 'fastify'
import type { Redis } from 'ioredis'
import { test } from 'tap'
import signalr from '../index.js'
import { browserClientFile, signalrAdmin } from '../lib/admin/index.js'
import type { AdminSnapshot } from '../lib/admin/monitor.js'
import { readTuple, writeTuple } from '../lib/lifetime/redis/codec.js'
import { redisBackplane } from '../lib/lifetime/redis/index.js'
import { ADMIN_TOKEN, adminGuard } from './fixtures/admin.js'
import { buildClient, connect, nextCall, record } from './fixtures/client.js'
import { fleetHub } from './fixtures/fleet-hub.js'
import { redisClient, redisMissing, startRedis } from './fixtures/redis.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

const HUB = '/hubs/scenario'

async function adminServer (t: Parameters<typeof startServer>[0], admin: Record<string, unknown> = {}): Promise<Awaited<ReturnType<typeof startServer>>> {
  return await startServer(t, {
    setup: async (app) => { await app.register(signalrAdmin, { onRequest: adminGuard, interval: 100, ...admin }) }
  })
}

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }

test('the hook guards the page, its assets and its hub: 401 without auth', async (t) => {
  const { app, base } = await adminServer(t, { title: 'Ops <b>&</b> "fleet"' })
  for (const url of ['/signalr-admin', '/signalr-admin/admin.js', '/signalr-admin/admin.css', '/signalr-admin/signalr.min.js']) {
    t.equal((await app.inject(url)).statusCode, 401, `GET ${url} without auth`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/signalr-admin/hub/negotiate?negotiateVersion=1' })).statusCode, 401, 'the hub negotiate without auth')
  await t.rejects(connect(t, `${base}/signalr-admin/hub`), /401/, 'the official client cannot connect to the admin hub without auth')

  const page = await app.inject({ url: '/signalr-admin', headers: auth })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/, 'the page may run only its own scripts')
  t.match(page.body, '<title>Ops &lt;b&gt;&amp;&lt;/b&gt; &quot;fleet&quot;</title>', 'the title is escaped into the page')
  t.match(page.body, '<script src="/signalr-admin/signalr.min.js"></script>')
  t.notMatch(page.body, /https?:\/\//, 'no CDN: nothing is loaded from elsewhere')
  const client = await app.inject({ url: '/signalr-admin/signalr.min.js', headers: auth })
  t.equal(client.statusCode, 200)
  t.match(client.body, /HubConnectionBuilder/, 'the official browser client, from the installed package')
  t.match((await app.inject({ url: '/signalr-admin/admin.js', headers: auth })).headers['content-type'], /^text\/javascript/)
  t.match((await app.inject({ url: '/signalr-admin/admin.css', headers: auth })).headers['content-type'], /^text\/css/)
  const admin = await connect(t, `${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN })
  t.equal(admin.state, 'Connected', 'with auth, the official client connects to the admin hub')
})

test('a prefix and a path of its own move every route of the view', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  await app.register(signalrAdmin, { prefix: '/ops', path: '/live', onRequest: adminGuard })
  await app.ready()
  const page = await app.inject({ url: '/ops/live', headers: auth })
  t.equal(page.statusCode, 200)
  t.match(page.body, 'data-base="/ops/live"')
  t.same(app.signalr.paths, ['/ops/live/hub'], 'the admin hub is mapped under the view')
  t.equal((await app.inject({ url: '/ops/live/admin.js' })).statusCode, 401)
})

test('bad options and a missing fastify-signalr or browser client fail at register, with FST_SIGNALR_ codes', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ path: 'admin' }, /'path' of signalrAdmin: must match pattern/],
    [{ path: '/admin/' }, /'path' of signalrAdmin/],
    [{ path: '/a"><script>' }, /'path' of signalrAdmin/],
    [{ interval: 10 }, /'interval' of signalrAdmin: must be >= 100/],
    [{ maxConnections: 0 }, /'maxConnections' of signalrAdmin/],
    [{ title: '' }, /'title' of signalrAdmin/],
    [{ colour: 'red' }, /'colour' of signalrAdmin: is not a known option/],
    [{ preHandler: 'yes' }, /'preHandler' of signalrAdmin: must be a hook function/],
    [{ onRequest: [] }, /'onRequest' of signalrAdmin/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await app.register(signalr)
    await t.rejects(async () => { await app.register(signalrAdmin, options as never) }, { code: 'FST_SIGNALR_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }
  const alone = Fastify()
  await t.rejects(async () => { await alone.register(signalrAdmin) }, { code: 'FST_SIGNALR_ADMIN_WITHOUT_PLUGIN', message: /register it first/ })
  await alone.close()

  t.match(browserClientFile(), /@microsoft\/signalr\/dist\/browser\/signalr\.min\.js$/)
  t.throws(() => browserClientFile(() => { throw new Error("Cannot find module '@microsoft/signalr/dist/browser/signalr.min.js'\nRequire stack: ...") }), {
    code: 'FST_SIGNALR_ADMIN_CLIENT_MISSING',
    message: /optional peer dependency '@microsoft\/signalr'.*Cannot find module.*npm install @microsoft\/signalr$/
  })
})

test('a hub whose snapshot fails shows the error, and the other hubs still show', async (t) => {
  const { app, base, url } = await adminServer(t)
  await connect(t, url, { user: 'ann' })
  const hub = app.signalr.hub(HUB)
  hub.snapshot = async () => { throw new Error('the backplane is down') }
  const admin = await connect(t, `${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN })
  const s = await admin.invoke<AdminSnapshot>('Snapshot')
  t.match(s.hubs, [{ path: HUB, error: 'the backplane is down', connections: [] }])
  // A tick that cannot be sent is logged and the next one goes out
  const pushed = record(admin, 'Snapshot')
  await until(() => pushed.length >= 2)
  t.pass('ticks go on')
})

test('options: not an object, and hooks left undefined', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  await t.rejects(async () => { await app.register(signalrAdmin, 'admin' as never) }, { code: 'FST_SIGNALR_INVALID_OPTION', message: /must be an object/ })
  const other = Fastify()
  t.teardown(async () => { await other.close() })
  await other.register(signalr)
  await other.register(signalrAdmin, { onRequest: adminGuard, preHandler: undefined })
  await other.ready()
  t.equal((await other.inject('/signalr-admin')).statusCode, 401, 'the hook that is there guards')
})

test('without a guard hook the view still works, and the log says it is open to anyone', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write (line: string) { lines.push(line) } } } })
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  await app.register(signalrAdmin)
  await app.ready()
  t.equal((await app.inject('/signalr-admin')).statusCode, 200)
  t.match(lines.join(''), /no hook guards the admin view/)
})

test('the snapshot lists the connections that are there: user, transport, protocol, groups, age, bytes waiting', async (t) => {
  const { app, base, url } = await adminServer(t)
  const before = Date.now()
  const ann = await connect(t, url, { user: 'ann' })
  const bo = await connect(t, url, { user: 'bo', transport: 'LongPolling', protocol: 'messagepack' })
  const anon = await connect(t, url, { transport: 'ServerSentEvents' })
  await ann.invoke('JoinGroup', 'room-a')
  await bo.invoke('JoinGroup', 'room-a')
  await bo.invoke('JoinGroup', 'room-b')

  const admin = await connect(t, `${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN })
  const s = await admin.invoke<AdminSnapshot>('Snapshot')
  t.same(s.hubs.map((h) => h.path), [HUB], "the admin hub's own connections are not listed")
  const hub = s.hubs[0]
  t.equal(hub.connectionCount, 3)
  t.equal(hub.omitted, 0)
  t.equal(hub.servers, 1)
  const byId = new Map(hub.connections.map((c) => [c.connectionId, c]))
  t.match(byId.get(ann.connectionId as string), { userId: 'ann', transport: 'WebSockets', protocol: 'json', groups: ['room-a'], groupCount: 1 })
  t.match(byId.get(bo.connectionId as string), { userId: 'bo', transport: 'LongPolling', protocol: 'messagepack', groups: ['room-a', 'room-b'], groupCount: 2 })
  t.match(byId.get(anon.connectionId as string), { userId: null, transport: 'ServerSentEvents', protocol: 'json', groups: [] })
  for (const c of hub.connections) {
    t.ok(c.connectedAt >= before - 1 && c.connectedAt <= s.at, 'connectedAt is when it negotiated')
    t.equal(typeof c.bytesWaiting, 'number')
    t.equal(c.server, undefined, 'no server names without a backplane')
  }
  t.same(hub.groups, [
    { name: 'room-a', members: [ann.connectionId, bo.connectionId] },
    { name: 'room-b', members: [bo.connectionId] }
  ], 'groups with their members')
  t.equal(s.totals.connections, 3)

  // The counters the connections keep for telemetry: messages from and to clients
  const h = app.signalr.hub(HUB)
  const first = await h.snapshot()
  for (let i = 0; i < 5; i++) await ann.invoke('Echo', `m${i}`)
  const second = await h.snapshot()
  t.ok(second.messagesReceived - first.messagesReceived >= 5, 'each invocation counts as a message received')
  t.ok(second.messagesSent - first.messagesSent >= 5, 'each completion counts as a message sent')
  // Pages get a snapshot per interval, with a rate once two ticks have been seen
  const pushed = record(admin, 'Snapshot') as unknown as Array<[AdminSnapshot]>
  await until(() => pushed.length >= 2)
  t.ok(pushed.every(([p]) => p.history.length >= 1 && p.history.at(-1)?.[1] === 3), 'the chart history ends at the current count')
  await ann.invoke('Echo', 'busy')
  await until(() => pushed.some(([p]) => p.hubs[0].messagesPerSecond > 0))
  t.pass('messages per second rise while clients talk')
  await anon.stop()
  await until(() => pushed.at(-1)?.[0].hubs[0].connectionCount === 2)
  t.notOk(pushed.at(-1)?.[0].hubs[0].connections.some((c) => c.connectionId === anon.connectionId), 'a closed connection leaves the list')
})

test('snapshots are bounded: at most maxConnections rows, and the rest counted', async (t) => {
  const { app, base, url } = await adminServer(t, { maxConnections: 2 })
  const clients = await Promise.all(['a', 'b', 'c'].map(async (user) => await connect(t, url, { user })))
  const admin = await connect(t, `${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN })
  const hub = (await admin.invoke<AdminSnapshot>('Snapshot')).hubs[0]
  t.equal(hub.connections.length, 2)
  t.equal(hub.connectionCount, 3)
  t.equal(hub.omitted, 1)
  t.same(hub.connections.map((c) => c.connectionId), clients.slice(0, 2).map((c) => c.connectionId), 'oldest first')

  const h = app.signalr.hub(HUB)
  t.match(await h.snapshot({ limit: 0 }), { connections: [], connectionCount: 3, omitted: 3 })
  for (const limit of [-1, 1001, 1.5, '10']) {
    await t.rejects(h.snapshot({ limit: limit as number }), { code: 'FST_SIGNALR_INVALID_ARGUMENT', message: /snapshot limit/ }, `limit ${String(limit)}`)
  }
  // A connection in very many groups lists the first hundred and counts the rest
  for (let i = 0; i < 120; i++) await h.groups.add(clients[0].connectionId as string, `g${i}`)
  const one = (await h.snapshot({ limit: 1 })).connections[0]
  t.equal(one.groups.length, 100)
  t.equal(one.groupCount, 120)
})

test('one timer for every page: each tick is one snapshot, sent to all; none while no page is open', async (t) => {
  const { app, base, url } = await adminServer(t)
  await connect(t, url, { user: 'ann' })
  const hub = app.signalr.hub(HUB)
  let made = 0
  const real = hub.snapshot.bind(hub)
  hub.snapshot = async (o) => { made++; return await real(o) }
  const pages = [buildClient(`${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN }), buildClient(`${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN })]
  const seen = pages.map((p) => record(p, 'Snapshot') as unknown as Array<[AdminSnapshot]>)
  await Promise.all(pages.map(async (p) => { await p.start() }))
  await until(() => seen.every((s) => s.length >= 3))
  await Promise.all(pages.map(async (p) => { await p.stop() }))
  const ticks = new Set(seen.flat().map(([s]) => s.at))
  t.ok(made <= ticks.size + 2, `snapshots made (${made}) follow the ticks (${ticks.size}), not the pages`)
  const common = seen[0].filter(([s]) => seen[1].some(([o]) => o.at === s.at))
  t.ok(common.length >= 2, 'both pages got the same snapshots')
  const after = made
  await new Promise((resolve) => { setTimeout(resolve, 400) })
  t.equal(made, after, 'no snapshot is made while no page is open')
})

test('actions: disconnect a connection and send a test message to a group; bad input gets an error answer', async (t) => {
  const { base, url } = await adminServer(t)
  const ann = await connect(t, url, { user: 'ann' })
  const bo = await connect(t, url, { user: 'bo' })
  await ann.invoke('JoinGroup', 'room-a')
  const admin = await connect(t, `${base}/signalr-admin/hub`, { accessToken: ADMIN_TOKEN })

  const heard = nextCall(ann, 'Notice')
  t.equal(await admin.invoke('SendToGroup', HUB, 'room-a', 'Notice', ['hello', { n: 1 }]), 1, 'answers how many were in the group')
  t.same(await heard, ['hello', { n: 1 }], 'the member got the test message with its arguments')
  t.equal(await admin.invoke('SendToGroup', HUB, 'nobody-here', 'Notice', []), 0)

  const closed = new Promise<Error | undefined>((resolve) => { bo.onclose(resolve) })
  t.equal(await admin.invoke('Disconnect', HUB, bo.connectionId), true)
  t.equal(await closed, undefined, 'the client got a Close and ended')
  t.equal(ann.state, 'Connected', 'the others stay')

  const refused: Array<[string, unknown[], RegExp]> = [
    ['Disconnect', [HUB, 'no-such-id'], /HubException: No connection 'no-such-id' on hub '\/hubs\/scenario'\./],
    ['Disconnect', ['/hubs/none', ann.connectionId], /HubException: No hub is mapped at '\/hubs\/none'\./],
    ['Disconnect', ['/signalr-admin/hub', admin.connectionId], /HubException: No hub is mapped at '\/signalr-admin\/hub'\./],
    ['Disconnect', [HUB, ''], /Argument 1 is invalid/],
    ['Disconnect', [HUB, 42], /Argument 1 is invalid/],
    ['Disconnect', ['no-slash', 'x'], /Argument 0 is invalid/],
    ['SendToGroup', [HUB, 'room-a', '1bad', []], /Argument 2 is invalid/],
    ['SendToGroup', [HUB, 'room-a', 'Notice', 'not an array'], /Argument 3 is invalid/],
    ['SendToGroup', [HUB, 'room-a', 'Notice', Array.from({ length: 17 }, () => 0)], /Argument 3 is invalid/],
    ['SendToGroup', [HUB, 'x'.repeat(1025), 'Notice', []], /Argument 1 is invalid/],
    ['SendToGroup', [HUB, '', 'Notice', []], /Argument 1 is invalid/]
  ]
  for (const [method, args, message] of refused) await t.rejects(admin.invoke(method, ...args), { message }, `${method} ${JSON.stringify(args).slice(0, 60)}`)
  t.equal(admin.state, 'Connected', 'the admin page stays connected after refused actions')
  t.equal(ann.state, 'Connected')
})

const noRedis = redisMissing()
if (noRedis !== false) console.log(`# skipping the fleet snapshot test: ${noRedis}`)

test('with a Redis backplane the snapshot covers every server; a silent or lying server is counted, not believed', { skip: noRedis }, async (t) => {
  const redis = await startRedis(t)
  const HUB_NAME = 'AdminTest.Fleet'
  const servers = await Promise.all(['node-a', 'node-b'].map(async (serverName) => {
    const client = await redisClient(t, redis, 'ioredis')
    return await startServer(t, {
      hub: fleetHub,
      path: '/hubs/fleet',
      plugin: { backplane: redisBackplane({ client, serverName, hubName: HUB_NAME, commandTimeout: 1000 }) }
    })
  }))
  const [a, b] = servers
  const ann = await connect(t, a.url, { user: 'ann' })
  const bo = await connect(t, b.url, { user: 'bo', transport: 'LongPolling' })
  await ann.invoke('AddToGroup', bo.connectionId, 'ops')
  const hub = a.app.signalr.hub('/hubs/fleet')
  await until(async () => (await hub.snapshot()).connectionCount === 2)
  const s = await hub.snapshot()
  t.equal(s.servers, 2)
  t.equal(s.unreachable, 0)
  const byId = new Map(s.connections.map((c) => [c.connectionId, c]))
  t.match(byId.get(ann.connectionId as string), { server: 'node-a', userId: 'ann', transport: 'WebSockets' })
  t.match(byId.get(bo.connectionId as string), { server: 'node-b', userId: 'bo', transport: 'LongPolling', groups: ['ops'] }, 'a connection of the other server, with its groups')
  t.ok(s.messagesReceived >= 1, "both servers' counters are summed")
  t.match(await hub.snapshot({ limit: 1 }), { connections: [{ server: 'node-a' }], connectionCount: 2, omitted: 1 }, 'the limit holds across the fleet')

  // Two servers that seem alive: one listens to nothing, one answers what no schema allows
  const key = (...parts: string[]): string => `${HUB_NAME}:fastify-signalr:${parts.join(':')}`
  for (const ghost of ['ghost', 'liar']) {
    redis.cli('SADD', key('servers'), ghost)
    redis.cli('SET', key('alive', ghost), '1', 'PX', '60000')
  }
  const liar = await redisClient(t, redis, 'ioredis') as Redis
  const replier = await redisClient(t, redis, 'ioredis') as Redis
  // Its answers in turn: JSON the schema refuses, no JSON at all, nothing
  const lies: Array<Array<string | number>> = [['{"connections":"all of them","connectionCount":1e9}'], ['{not json'], []]
  let told = 0
  liar.on('messageBuffer', (_channel: Buffer, payload: Buffer) => {
    const [, id, from] = readTuple(payload, 3)
    void replier.publish(`${HUB_NAME}:fastify-signalr:server:${String(from)}`, writeTuple([1, id as number, 0, ...lies[told++ % lies.length]]))
  })
  await liar.subscribe(`${HUB_NAME}:fastify-signalr:server:liar`)
  for (const lie of lies) {
    const odd = await hub.snapshot()
    t.equal(odd.servers, 2, `only real answers count (${JSON.stringify(lie)})`)
    t.equal(odd.unreachable, 2, 'the silent server and the one whose answer is not a snapshot')
    t.equal(odd.connectionCount, 2, 'nothing of the invalid answer is believed')
  }
  t.equal(told, lies.length)
})

test("the README's example: examples/admin.ts guards the view with a cookie, and reads the snapshot itself", async (t) => {
  process.env.ADMIN_TOKEN = ADMIN_TOKEN
  t.teardown(() => { delete process.env.ADMIN_TOKEN })
  const { buildAdminApp, whoIsConnected } = await import('../examples/admin.js')
  const app = await buildAdminApp()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address() as { port: number }
  const base = `http://127.0.0.1:${address.port}`
  t.equal((await app.inject('/signalr-admin')).statusCode, 401, 'no cookie, no page')
  const page = await app.inject({ url: '/signalr-admin', headers: { cookie: `admin=${ADMIN_TOKEN}` } })
  t.equal(page.statusCode, 200)
  t.match(page.body, '<h1>Chat fleet</h1>')
  const ann = await connect(t, `${base}/hubs/chat?user=ann`, { transport: 'ServerSentEvents' })
  await ann.invoke('Join', 'garden')
  t.same(await whoIsConnected(app), ['ann over ServerSentEvents/json, in garden'])
  const admin = await connect(t, `${base}/signalr-admin/hub`, { headers: { cookie: `admin=${ADMIN_TOKEN}` } })
  t.equal((await admin.invoke<AdminSnapshot>('Snapshot')).title, 'Chat fleet')
})
