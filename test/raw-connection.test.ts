// Raw connection handlers (app.signalrConnection), judged by the official JS client's
// HttpConnection as the JS functional suite judges ASP.NET Core's /echo handler: negotiate
// and every transport without the hub protocol, the route's hooks on every request, the
// transports' limits, and the handler's lifetime.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { test } from 'tap'
import WebSocket from 'ws'
import signalr, { accessToken, defineHub, errors, type FastifySignalROptions, type RawConnection, type RawConnectionRouteOptions } from '../index.js'
import { MAX_HELD_MESSAGES, type RawSession } from '../lib/raw/raw-connection.js'
import type { TransportName } from './fixtures/client.js'
import { joined, openConnection, type Format, type RawClientConnection } from './fixtures/http-connection.js'
import { listen } from './fixtures/listen.js'
import { histogramOf, memoryMetrics, valueOf } from './fixtures/otel.js'
import { negotiate } from './fixtures/raw-client.js'
import { until } from './fixtures/until.js'
import type { Connection } from '../lib/connection.js'
import { registryOf } from '../lib/registry.js'
import { LongPollingTransport } from '../lib/transports/long-polling.js'

interface Teardown { teardown (fn: () => unknown): void }

const PATH = '/echo'
const LIMIT = 32_768

interface RawServer {
  app: FastifyInstance
  base: string
  url: string
  /** The app's log lines, parsed. */
  logs: () => Array<Record<string, unknown>>
}

async function rawServer (t: Teardown, handler: (c: RawConnection) => void | Promise<void>, o: {
  route?: RawConnectionRouteOptions
  plugin?: FastifySignalROptions
  path?: string
  prefix?: string
} = {}): Promise<RawServer> {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done() } })
  const app = Fastify({ logger: { level: 'debug', stream }, forceCloseConnections: true })
  await app.register(signalr, o.plugin ?? {})
  const path = o.path ?? PATH
  if (o.prefix === undefined) app.signalrConnection(path, handler, o.route)
  else await app.register(async (scope) => { scope.signalrConnection(path, handler, o.route) }, { prefix: o.prefix })
  const base = await listen(t, app)
  return {
    app,
    base,
    url: base + (o.prefix ?? '') + path,
    logs: () => lines.join('').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>)
  }
}

/** The JS functional suite's EchoConnectionHandler: every message back as it came. */
function echoHandler (): { handler: (c: RawConnection) => Promise<void>, sessions: RawConnection[] } {
  const sessions: RawConnection[] = []
  return {
    sessions,
    async handler (c) {
      sessions.push(c)
      for await (const m of c) await c.send(m)
    }
  }
}

function arrayBuffer (b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer
}

/** `n` bytes of UTF-8 text with multi-byte characters and a newline, no CR (SSE turns CRLF into LF). */
function textOf (n: number): string {
  const head = 'héllo wörld ✓ 𝄞\nline two '
  return head + 'x'.repeat(n - Buffer.byteLength(head))
}

const MATRIX: Array<[TransportName, Format]> = [
  ['WebSockets', 'Text'], ['WebSockets', 'Binary'], ['ServerSentEvents', 'Text'], ['LongPolling', 'Text'], ['LongPolling', 'Binary']
]

for (const [transport, format] of MATRIX) {
  test(`echo over ${transport} / ${format}: the bytes come back exactly, up to the limit, and many in order`, async (t) => {
    const echo = echoHandler()
    const { url } = await rawServer(t, echo.handler)
    const client = await openConnection(t, url, { transport, format })
    const text = format === 'Text'
    const payloads = text
      ? ['Hello World!', textOf(1000), textOf(LIMIT)]
      : [arrayBuffer(Buffer.from([0, 0x1e, 0x0a, 0x0d, 0xff, 0x80])), arrayBuffer(randomBytes(1000)), arrayBuffer(randomBytes(LIMIT))]
    for (const [i, p] of payloads.entries()) {
      await client.connection.send(p)
      await until(() => client.received.length > i)
      const got = client.received[i]
      if (text) t.equal(got, p, `text message ${i} of ${Buffer.byteLength(p as string)} bytes comes back as the same string`)
      else t.same(Buffer.from(got as ArrayBuffer), Buffer.from(p as ArrayBuffer), `binary message ${i} of ${(p as ArrayBuffer).byteLength} bytes comes back byte for byte`)
      t.equal(typeof got === 'string', text, 'in the format it was sent in')
    }

    const before = client.received.length
    const many = Array.from({ length: 300 }, (_, i) => `message ${i};`)
    await Promise.all(many.map(async (m) => { await client.connection.send(text ? m : arrayBuffer(Buffer.from(m))) }))
    const expected = Buffer.from(many.join(''))
    await until(() => joined(client.received.slice(before)).length >= expected.length)
    t.same(joined(client.received.slice(before)), expected, '300 messages come back in order, nothing lost or added')
    t.equal(echo.sessions.length, 1, 'one connection, one handler run')
    t.equal(echo.sessions[0].transport, transport, 'the handler sees the transport')
    t.equal(echo.sessions[0].connectionId, client.connection.connectionId, 'and the connection id the client negotiated')

    await client.connection.stop()
    t.equal(await client.closed, undefined, 'the client stops cleanly')
    t.equal(await echo.sessions[0].closed, undefined, 'the handler sees a clean close')
    t.ok(echo.sessions[0].signal.aborted, 'and its signal aborted')
  })
}

test('the handler sees the opening request, the user, per-connection items; the connection and the open and close lines are logged', async (t) => {
  const seen: Array<{ url: string, userId: string | undefined, items: boolean }> = []
  const { url, logs } = await rawServer(t, async (c) => {
    c.items.set('k', 1)
    seen.push({ url: c.request.url, userId: c.userId, items: c.items.get('k') === 1 })
    await c.send(`hi ${c.userId ?? '?'}`)
    for await (const m of c) if (m === 'bye') return
  }, { route: { userId: (request) => (request.query as Record<string, string>).user } })
  const client = await openConnection(t, `${url}?user=ada`, { transport: 'WebSockets' })
  const connectionId = client.connection.connectionId
  await until(() => client.received.length === 1)
  t.equal(client.received[0], 'hi ada', 'the userId resolver ran on the opening request')
  t.match(seen[0].url, /^\/echo\?user=ada&id=/, 'request is the transport request that opened the connection')
  t.ok(seen[0].items, 'items live with the connection')
  await client.connection.send('bye')
  t.equal(await client.closed, undefined, 'returning from the handler closes the connection, cleanly')
  await until(() => logs().some((l) => l.msg === 'signalr: connection closed'))
  const opened = logs().find((l) => l.msg === 'signalr: connection opened')
  t.equal(opened?.transport, 'WebSockets')
  t.equal(opened?.user, 'ada')
  t.equal(opened?.signalrConnectionId, connectionId, 'on the connection\'s child logger')
  t.equal(logs().find((l) => l.msg === 'signalr: connection closed')?.status, 'normal_closure')
})

test('negotiate: both transfer formats except on SSE, v0 and v1, never stateful reconnect, the transports the route allows', async (t) => {
  const echo = echoHandler()
  const { base, url } = await rawServer(t, echo.handler, { plugin: { allowStatefulReconnects: true } })
  const res = await fetch(`${url}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })
  const body = await res.json() as Record<string, unknown>
  t.same(body.availableTransports, [
    { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
    { transport: 'ServerSentEvents', transferFormats: ['Text'] },
    { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] }
  ])
  t.equal(body.useStatefulReconnect, undefined, 'stateful reconnect is the hub protocol\'s: never offered')
  t.equal(body.negotiateVersion, 1)
  t.type(body.connectionToken, 'string')

  // v0: the id is the token
  const v0 = await (await fetch(`${url}/negotiate`, { method: 'POST' })).json() as { connectionId: string, connectionToken?: string }
  t.equal(v0.connectionToken, undefined)
  const ws = new WebSocket(`${base.replace('http', 'ws')}${PATH}?id=${v0.connectionId}`)
  ws.on('error', () => {})
  t.teardown(() => { ws.terminate() })
  await new Promise((resolve) => ws.once('open', resolve))
  const echoed = new Promise<[Buffer, boolean]>((resolve) => ws.once('message', (d: Buffer, binary: boolean) => { resolve([d, binary]) }))
  ws.send('v0')
  t.same(await echoed, [Buffer.from('v0'), false], 'a v0 connection echoes, a text frame as text')

  // Only the transports the route allows
  const only = await rawServer(t, echo.handler, { path: '/lp', route: { transports: ['LongPolling'] } })
  const lp = await (await fetch(`${only.url}/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { availableTransports: unknown }
  t.same(lp.availableTransports, [{ transport: 'LongPolling', transferFormats: ['Text', 'Binary'] }])
  const client = await openConnection(t, only.url, { transport: 'LongPolling' })
  await client.connection.send('only lp')
  await until(() => client.received.length === 1)
  t.equal(client.received[0], 'only lp')
})

test('skipNegotiation over WebSockets, a scope prefix, and paths in another case reach the handler', async (t) => {
  const echo = echoHandler()
  const { base } = await rawServer(t, echo.handler, { prefix: '/api', path: '/Raw' })
  const ws = new WebSocket(`${base.replace('http', 'ws')}/API/raw`)
  ws.on('error', () => {})
  t.teardown(() => { ws.terminate() })
  await new Promise((resolve) => ws.once('open', resolve))
  const echoed = new Promise<[Buffer, boolean]>((resolve) => ws.once('message', (d: Buffer, binary: boolean) => { resolve([d, binary]) }))
  ws.send(Buffer.from([1, 2, 3]))
  t.same(await echoed, [Buffer.from([1, 2, 3]), true], 'a binary frame comes back binary')
  // Each WebSocket message keeps its boundaries and type (the official client, which queues
  // sends made while one is in flight, joins them into one message of its own)
  const three: Array<[string, boolean]> = []
  ws.on('message', (d: Buffer, binary: boolean) => { three.push([d.toString(), binary]) })
  ws.send('a')
  ws.send(Buffer.from('b'))
  ws.send('c')
  await until(() => three.length === 3)
  t.same(three, [['a', false], ['b', true], ['c', false]], 'three messages back as three, each of its type')
  const client = await openConnection(t, `${base}/api/RAW`, { transport: 'ServerSentEvents' })
  await client.connection.send('prefixed')
  await until(() => client.received.length === 1)
  t.equal(client.received[0], 'prefixed', 'negotiate and SSE under the prefix, whatever the case')
})

/** One HTTP request; the status code. */
async function status (method: string, url: string, headers: Record<string, string> = {}): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
}

test('the route\'s hooks guard negotiate and every transport request', async (t) => {
  const echo = echoHandler()
  const { base, url } = await rawServer(t, echo.handler, {
    route: {
      async onRequest (request: FastifyRequest, reply: FastifyReply) {
        if (accessToken(request) !== 's3cret') return await reply.code(401).send({ error: 'Unauthorized' })
      }
    }
  })
  const auth = { authorization: 'Bearer s3cret' }
  t.equal(await status('POST', `${url}/negotiate?negotiateVersion=1`), 401, 'negotiate without the token')
  for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as TransportName[]) {
    const client = await openConnection(t, url, { transport, accessToken: 's3cret' })
    await client.connection.send(`with token over ${transport}`)
    await until(() => client.received.length === 1)
    t.equal(client.received[0], `with token over ${transport}`, `${transport} connects with the token`)
  }
  const neg = await (await fetch(`${url}/negotiate?negotiateVersion=1`, { method: 'POST', headers: auth })).json() as { connectionToken: string }
  const id = `${url}?id=${neg.connectionToken}`
  t.equal(await status('GET', id, { accept: 'text/event-stream' }), 401, 'an SSE stream without the token')
  t.equal(await status('GET', id), 401, 'a poll without the token')
  t.equal(await status('POST', id, { 'content-type': 'text/plain' }), 401, 'a send without the token')
  t.equal(await status('DELETE', id), 401, 'a DELETE without the token')
  const ws = new WebSocket(`${base.replace('http', 'ws')}${PATH}?id=${neg.connectionToken}`)
  ws.on('error', () => {})
  const refused = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
    ws.once('open', () => { resolve(101) })
  })
  ws.terminate()
  t.equal(refused, 401, 'a WebSocket upgrade without the token')
  t.equal(echo.sessions.length, 3, 'no connection opened without the token')
})

test('a message over the limit: WebSockets closes with 1009, a POST gets 413; both are logged, others are unharmed', async (t) => {
  const echo = echoHandler()
  const { url, logs } = await rawServer(t, echo.handler)
  const bystander = await openConnection(t, url, { transport: 'WebSockets' })

  const ws = await openConnection(t, url, { transport: 'WebSockets', format: 'Binary' })
  await ws.connection.send(arrayBuffer(randomBytes(LIMIT + 1))).catch(() => {})
  const wsError = await ws.closed
  t.match(wsError?.message, /1009/, 'the client hears close code 1009 (message too big)')
  t.type(await echo.sessions[1].closed, errors.ConnectionClosedError, 'the handler sees its connection end with an error')
  t.ok(logs().some((l) => l.msg === 'signalr: WebSocket protocol error' && l.level === 40), 'a warning is logged')

  const lp = await openConnection(t, url, { transport: 'LongPolling' })
  const refusal = await lp.connection.send('x'.repeat(LIMIT + 1)).then(() => undefined, (err: unknown) => err)
  t.equal((refusal as { statusCode?: number } | undefined)?.statusCode, 413, 'an oversize POST is refused with 413')
  t.ok(logs().some((l) => (l.err as { code?: string } | undefined)?.code === 'FST_ERR_CTP_BODY_TOO_LARGE'), 'and logged')
  await lp.connection.send('after')
  await until(() => lp.received.length === 1)
  t.equal(lp.received[0], 'after', 'the long polling connection goes on')

  await bystander.connection.send('still here')
  await until(() => bystander.received.length === 1)
  t.equal(bystander.received[0], 'still here', 'another connection is unharmed')
})

test('a handler that does not read: the socket is paused and what is held stays bounded; all of it arrives once it reads', async (t) => {
  const MAX_BUFFER = 16_384
  let session: RawSession | undefined
  let release!: () => void
  const reading = new Promise<void>((resolve) => { release = resolve })
  const received: Buffer[] = []
  const { base } = await rawServer(t, async (c) => {
    session = c as RawSession
    await reading
    for await (const m of c) received.push(m as Buffer)
  }, { route: { transportMaxBufferSize: MAX_BUFFER } })
  const neg = await negotiate(base, PATH)
  const ws = new WebSocket(`${base.replace('http', 'ws')}${PATH}?id=${neg.connectionToken}`)
  ws.on('error', () => {})
  t.teardown(() => { ws.terminate() })
  await new Promise((resolve) => ws.once('open', resolve))
  await until(() => session !== undefined)
  // 4 MiB in 1 KiB messages, then 5,000 one-byte messages
  const sent: Buffer[] = []
  for (let i = 0; i < 4096; i++) sent.push(Buffer.alloc(1024, i % 251))
  for (let i = 0; i < 5000; i++) sent.push(Buffer.from([i % 256]))
  for (const m of sent) ws.send(m)
  let maxBytes = 0
  let maxCount = 0
  const s = session as RawSession
  await until(() => {
    maxBytes = Math.max(maxBytes, s.heldBytes)
    maxCount = Math.max(maxCount, s.heldMessages)
    return s.heldBytes >= MAX_BUFFER
  })
  // A while for anything more to arrive
  for (let i = 0; i < 40; i++) {
    await sleep(5)
    maxBytes = Math.max(maxBytes, s.heldBytes)
    maxCount = Math.max(maxCount, s.heldMessages)
  }
  // ws hands out every message of the read it is processing, paused or not: one socket read (64 KiB) more at most
  t.ok(maxBytes <= MAX_BUFFER + 65_536, `bytes held stay bounded (${maxBytes})`)
  t.ok(maxCount <= MAX_HELD_MESSAGES + 65_536 / 7, `and so does their count (${maxCount})`)
  release()
  await until(() => received.length === sent.length, 20_000)
  t.same(Buffer.concat(received), Buffer.concat(sent), 'every message arrives, in order, once the handler reads')
  t.equal(s.heldBytes, 0)
})

test('a handler that does not read a long polling client: its POST waits until the handler reads', async (t) => {
  let release!: () => void
  const reading = new Promise<void>((resolve) => { release = resolve })
  const got: string[] = []
  const { url } = await rawServer(t, async (c) => {
    await reading
    for await (const m of c) got.push(m as string)
  }, { route: { transportMaxBufferSize: 1024 } })
  const client = await openConnection(t, url, { transport: 'LongPolling' })
  let answered = false
  const first = client.connection.send('a'.repeat(2000)).then(() => { answered = true })
  await sleep(150)
  t.notOk(answered, 'the POST that filled the buffer is answered only once the handler reads')
  release()
  await first
  await client.connection.send('b')
  await until(() => got.join('').length === 2001)
  t.equal(got.join(''), 'a'.repeat(2000) + 'b', 'then everything arrives, in order')
})

test('a client that stops reading: send() paces the handler, and the connection is cut at the hard cap', async (t) => {
  const MAX_BUFFER = 65_536
  let sends = 0
  let maxWaiting = 0
  let session: RawSession | undefined
  let ended: unknown
  let handlerDone!: () => void
  const done = new Promise<void>((resolve) => { handlerDone = resolve })
  const { base, logs } = await rawServer(t, async (c) => {
    session = c as RawSession
    const chunk = Buffer.alloc(16_384, 7)
    try {
      for (;;) {
        await c.send(chunk)
        sends++
        maxWaiting = Math.max(maxWaiting, (c as RawSession).bytesWaiting)
      }
    } catch (err) {
      ended = err
    }
    handlerDone()
  }, { route: { transportMaxBufferSize: MAX_BUFFER, transportSendTimeout: 2000 } })
  const neg = await negotiate(base, PATH)
  const ws = new WebSocket(`${base.replace('http', 'ws')}${PATH}?id=${neg.connectionToken}`)
  ws.on('error', () => {})
  t.teardown(() => { ws.terminate() })
  ws.once('open', () => { (ws as unknown as { _socket: { pause: () => void } })._socket.pause() })
  await until(() => session !== undefined)
  const why = await (session as RawSession).closed
  t.ok(why instanceof errors.OutboundBufferFullError || why instanceof errors.SendTimeoutError, `the connection ends for not reading (${String(why)})`)
  // Checked before each send: at most one write batch (64 KiB) and one message beyond it
  t.ok(maxWaiting <= 4 * MAX_BUFFER + 65_536 + 16_384, `unread bytes stay within the hard cap (${maxWaiting})`)
  await done
  t.ok(ended instanceof errors.ConnectionClosedError, 'the next send rejects: the connection is gone')
  t.ok(sends > 0, `sends went out meanwhile (${sends})`)
  t.ok(logs().some((l) => /outbound buffer is full|stopped reading/.test(String(l.msg))), 'it is logged')
  t.notOk(logs().some((l) => l.msg === 'signalr: the connection handler failed; closing its connection'), 'a send refused after the close is no handler failure')
})

test('a handler that throws: it is logged and its connection closed with an error, others unharmed', async (t) => {
  const echo = echoHandler()
  const { url, logs } = await rawServer(t, async (c) => {
    const first = await c.read()
    if (first === 'throw now') throw new Error('handler bug')
    if (first === 'throw a string') throw 'not an error' // eslint-disable-line no-throw-literal
    await echo.handler(c)
  })
  const bystander = await openConnection(t, url, { transport: 'WebSockets' })
  await bystander.connection.send('start')

  const ws = await openConnection(t, url, { transport: 'WebSockets' })
  await ws.connection.send('throw now')
  t.match((await ws.closed)?.message, /1011/, 'a WebSocket client hears 1011 (internal error)')
  const failure = logs().find((l) => l.msg === 'signalr: the connection handler failed; closing its connection')
  t.equal(failure?.level, 50, 'logged as an error')
  t.equal((failure?.err as { message?: string } | undefined)?.message, 'handler bug')

  const lp = await openConnection(t, url, { transport: 'LongPolling' })
  await lp.connection.send('throw a string')
  t.match(await lp.closed, { statusCode: 500 }, 'a long polling client\'s last poll is answered 500')

  const sse = await openConnection(t, url, { transport: 'ServerSentEvents' })
  await sse.connection.send('throw now')
  t.equal(await sse.closed, undefined, 'an SSE stream just ends (EventSource cannot tell why)')

  await bystander.connection.send('alive')
  await until(() => bystander.received.length === 1)
  t.equal(bystander.received[0], 'alive', 'the others are unharmed')
})

test('a handler that closes, with or without an error; a client that sends DELETE', async (t) => {
  const sessions: RawConnection[] = []
  const { url } = await rawServer(t, async (c) => {
    sessions.push(c)
    for await (const m of c) {
      if (m === 'close') c.close()
      if (m === 'fail') c.close(new Error('refused'))
      if (m === 'bytes') await c.send(new Uint8Array([104, 105]))
    }
  })
  const ws = await openConnection(t, url, { transport: 'WebSockets', format: 'Binary' })
  await ws.connection.send('bytes')
  await until(() => ws.received.length === 1)
  t.same(Buffer.from(ws.received[0] as ArrayBuffer), Buffer.from('hi'), 'a Uint8Array goes out as binary')
  await ws.connection.send('close')
  t.equal(await ws.closed, undefined, 'close() ends a WebSocket cleanly (1000)')
  const wsFail = await openConnection(t, url, { transport: 'WebSockets' })
  await wsFail.connection.send('fail')
  t.match((await wsFail.closed)?.message, /1011/, 'close(error) ends it with 1011')
  t.match(await sessions[1].closed, { message: 'refused' }, 'closed resolves with the error given')

  const lp = await openConnection(t, url, { transport: 'LongPolling' })
  await lp.connection.send('close')
  t.equal(await lp.closed, undefined, 'close() ends long polling with a 204')
  const lpFail = await openConnection(t, url, { transport: 'LongPolling' })
  await lpFail.connection.send('fail')
  t.match(await lpFail.closed, { statusCode: 500 }, 'close(error) with a 500')

  const del = await openConnection(t, url, { transport: 'LongPolling' })
  await del.connection.stop()
  t.equal(await sessions[4].closed, undefined, 'the client\'s DELETE ends the handler\'s iteration cleanly')
  t.equal(await sessions[4].read(), undefined, 'and read() answers undefined from then on')
  await t.rejects(sessions[4].send('late'), errors.ConnectionClosedError, 'send() after the end rejects')
  await t.rejects(sessions[4].send(42 as unknown as string), errors.InvalidArgumentError, 'send() refuses what is neither text nor bytes')
})

test('a handler that lets through the rejection of a send after its client left is not logged as failed', async (t) => {
  let handlerEnded!: (err: unknown) => void
  const ended = new Promise<unknown>((resolve) => { handlerEnded = resolve })
  const { url, logs } = await rawServer(t, async (c) => {
    try {
      for (;;) {
        await c.send('tick')
        await sleep(5)
      }
    } catch (err) {
      handlerEnded(err)
      throw err
    }
  })
  const client = await openConnection(t, url, { transport: 'LongPolling' })
  await until(() => client.received.length > 0)
  await client.connection.stop()
  t.type(await ended, errors.ConnectionClosedError, 'the send after the DELETE rejects, and the handler lets it through')
  await until(() => logs().some((l) => l.msg === 'signalr: the connection handler ended after its connection closed'))
  t.equal(logs().find((l) => l.msg === 'signalr: the connection handler ended after its connection closed')?.level, 20, 'a debug line')
  t.notOk(logs().some((l) => l.level === 50), 'no error logged')
})

test('app.close() while connected over every transport: clients and handlers see the end', async (t) => {
  const otel = memoryMetrics()
  const echo = echoHandler()
  const { app, url } = await rawServer(t, echo.handler, { plugin: { telemetry: { meterProvider: otel.meterProvider } } })
  const clients: RawClientConnection[] = []
  for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as TransportName[]) {
    const c = await openConnection(t, url, { transport })
    await c.connection.send('up')
    await until(() => c.received.length === 1)
    clients.push(c)
  }
  const m = await otel.collect()
  for (const wire of ['web_sockets', 'server_sent_events', 'long_polling']) {
    t.equal(valueOf(m.get('signalr.server.active_connections'), { 'signalr.transport': wire }), 1, `an active ${wire} connection counts`)
  }
  t.equal(app.signalr.connectionCount, 3, 'app.signalr counts raw connections')
  // Fastify answers a poll that arrives after close() has begun with its own 503, before any
  // route runs; the end reaches a long-polling client through the poll it has parked
  const connections = [...(registryOf(app.signalr) as unknown as { byToken: Map<string, Connection> }).byToken.values()]
  await until(() => connections.some((c) => c.transport instanceof LongPollingTransport && c.transport.polling), 5000)
  await app.close()
  for (const c of clients) t.equal(await c.closed, undefined, 'the client is closed')
  for (const s of echo.sessions) t.equal(await s.closed, undefined, 'the handler is told')
  const after = await otel.collect()
  const h = histogramOf(after.get('signalr.server.connection.duration'), { 'signalr.connection.status': 'app_shutdown', 'signalr.transport': 'web_sockets' })
  t.equal(h?.count, 1, 'the duration is recorded, as an app shutdown')
})

test('mapping: a handler is required, hub-only options are refused, paths are not shared, nothing after start', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  const echo = echoHandler()
  t.throws(() => app.signalrConnection('/x', 'nope' as unknown as () => void), errors.InvalidArgumentError)
  t.throws(() => app.signalrConnection('no-slash', echo.handler), errors.InvalidArgumentError)
  t.throws(() => app.signalrConnection('/x', echo.handler, { keepAliveInterval: 1000 } as RawConnectionRouteOptions), { code: 'FST_SIGNALR_INVALID_OPTION', message: /'keepAliveInterval': is not a known option/ })
  t.throws(() => app.signalrConnection('/x', echo.handler, { transportMaxBufferSize: 10 }), { code: 'FST_SIGNALR_INVALID_OPTION' })
  app.signalrConnection('/x', echo.handler)
  t.throws(() => app.signalrConnection('/x/', echo.handler), errors.DuplicateHubError, 'the same path twice')
  t.throws(() => app.hub('/x', defineHub({ methods: {} })), errors.DuplicateHubError, 'a hub where a handler is')
  app.hub('/h', defineHub({ methods: {} }))
  t.throws(() => app.signalrConnection('/h', echo.handler), errors.DuplicateHubError, 'a handler where a hub is')
  t.same(app.signalr.paths, ['/h'], 'app.signalr lists hubs only')
  await app.ready()
  t.throws(() => app.signalrConnection('/late', echo.handler), errors.HubAfterStartError)
})

test('a negotiated connection that never connects is dropped after the disconnect timeout; a long poller that goes away too', async (t) => {
  const echo = echoHandler()
  const { app, url } = await rawServer(t, echo.handler, { route: { disconnectTimeout: 200 } })
  await fetch(`${url}/negotiate?negotiateVersion=1`, { method: 'POST' })
  t.equal(app.signalr.connectionCount, 1)
  await until(() => app.signalr.connectionCount === 0, 5000)
  t.pass('the negotiated connection is gone')

  const neg = await (await fetch(`${url}/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { connectionToken: string }
  t.equal(await status('GET', `${url}?id=${neg.connectionToken}`), 200, 'the first poll')
  await until(() => echo.sessions.length === 1)
  const why = await echo.sessions[0].closed
  t.equal((why as { code?: string } | undefined)?.code, 'FST_SIGNALR_DISCONNECT_TIMEOUT', 'a poller that stops polling is disposed')
})
