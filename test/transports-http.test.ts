// The transports at the HTTP level, against a real listening server: every status code of
// Long Polling, Server-Sent Events and the shared send/DELETE endpoints (signalr-wire.md §2),
// plus the official client's transport choice when a hub disables some.
import http, { type IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { decode, encode } from '@msgpack/msgpack'
import type { FastifyRequest } from 'fastify'
import { test } from 'tap'
import Type from 'typebox'
import WebSocket from 'ws'
import { defineHub } from '../index.js'
import { signalR } from './fixtures/client.js'
import { rawConnect, RS } from './fixtures/raw-client.js'
import { startServer, type TestServer } from './fixtures/server.js'

interface Teardown { teardown (fn: () => unknown): void }

// ---------------------------------------------------------------------------------------------
// A hub that reports its disconnects

const disconnects = new Map<string, { promise: Promise<Error | undefined>, resolve: (e: Error | undefined) => void }>()

/** Resolves when the hub's onDisconnected has run for this connection id. */
function disconnected (connectionId: string): { promise: Promise<Error | undefined>, resolve: (e: Error | undefined) => void } {
  let d = disconnects.get(connectionId)
  if (d === undefined) {
    let resolve!: (e: Error | undefined) => void
    const promise = new Promise<Error | undefined>((_resolve) => { resolve = _resolve })
    d = { promise, resolve }
    disconnects.set(connectionId, d)
  }
  return d
}

const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text }
  },
  onDisconnected (ctx, error) { disconnected(ctx.connectionId).resolve(error) }
})

const PATH = '/hubs/t'

// ---------------------------------------------------------------------------------------------
// HTTP helpers

interface Reply { status: number, headers: IncomingHttpHeaders, body: Buffer, text: string }

/** One raw HTTP request on its own socket; nothing is added that the caller did not set. */
async function request (method: string, url: string, o: { headers?: Record<string, string>, body?: string | Buffer, timeoutMs?: number } = {}): Promise<Reply> {
  const body = o.body === undefined ? undefined : Buffer.from(o.body)
  const headers: Record<string, string | number> = { ...o.headers }
  if (body !== undefined) headers['content-length'] = body.length
  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        clearTimeout(timer)
        const all = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, text: all.toString('utf8') })
      })
      res.on('error', reject)
    })
    const timer = setTimeout(() => {
      req.destroy()
      reject(new Error(`${method} ${url}: no response within ${o.timeoutMs ?? 5000}ms`))
    }, o.timeoutMs ?? 5000)
    req.on('error', (err) => { clearTimeout(timer); reject(err) })
    req.end(body)
  })
}

/** Whether `p` is still unsettled after `ms`. */
async function stillPending (p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false
  p.then(() => { settled = true }, () => { settled = true })
  await sleep(ms)
  return !settled
}

async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: not within ${ms}ms`)) }, ms) })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function negotiate (url: string): Promise<{ connectionId: string, connectionToken: string }> {
  const res = await request('POST', `${url}/negotiate?negotiateVersion=1`)
  return JSON.parse(res.text) as { connectionId: string, connectionToken: string }
}

/** Splits a JSON-protocol body into its records; throws unless it is whole records only. */
function records (text: string): unknown[] {
  if (!text.endsWith(RS)) throw new Error(`not whole records: ${JSON.stringify(text)}`)
  return text.slice(0, -1).split(RS).map((r) => JSON.parse(r) as unknown)
}

/** Splits a MessagePack-protocol body by its VarInt length prefixes; throws on a cut frame. */
function binaryFrames (body: Buffer): Array<{ prefix: number, message: unknown }> {
  const out: Array<{ prefix: number, message: unknown }> = []
  let offset = 0
  while (offset < body.length) {
    let length = 0
    let shift = 0
    let prefix = 0
    let byte
    do {
      if (offset + prefix >= body.length) throw new Error('cut VarInt prefix')
      byte = body[offset + prefix]
      length += (byte & 0x7f) * 2 ** shift
      shift += 7
      prefix++
    } while ((byte & 0x80) !== 0)
    const start = offset + prefix
    if (start + length > body.length) throw new Error('cut frame')
    out.push({ prefix, message: decode(body.subarray(start, start + length)) })
    offset = start + length
  }
  return out
}

function varInt (n: number): Buffer {
  const bytes: number[] = []
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    bytes.push(b)
  } while (n > 0)
  return Buffer.from(bytes)
}

function msgpackFrame (message: unknown): Buffer {
  const body = encode(message)
  return Buffer.concat([varInt(body.length), body])
}

/** Records the hub's requests as they arrive (a route onRequest hook). */
function arrivals (): { hook: (request: FastifyRequest) => Promise<void>, seen: FastifyRequest[], waitFor: (pred: (r: FastifyRequest) => boolean) => Promise<void> } {
  const seen: FastifyRequest[] = []
  const waiters: Array<() => void> = []
  return {
    seen,
    async hook (request) {
      seen.push(request)
      for (const w of waiters.splice(0)) w()
    },
    async waitFor (pred) {
      const deadline = Date.now() + 5000
      while (!seen.some(pred)) {
        if (Date.now() > deadline) throw new Error('the request did not arrive')
        await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 50) })
      }
      // The hook runs before the handler: give the handler its turn
      await sleep(50)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Transport set-up by hand

interface LongPollingClient {
  connectionId: string
  token: string
  url: string
  poll: (timeoutMs?: number) => Promise<Reply>
  post: (body: string | Buffer, contentType?: string) => Promise<Reply>
}

/** Negotiates; then (unless `handshake` is false) the first poll, the handshake POST, and the poll that fetches `{}`. */
async function longPolling (server: TestServer, o: { protocol?: 'json' | 'messagepack', handshake?: boolean } = {}): Promise<LongPollingClient> {
  const { connectionId, connectionToken } = await negotiate(server.url)
  const url = `${server.url}?id=${connectionToken}`
  let n = 0
  const client: LongPollingClient = {
    connectionId,
    token: connectionToken,
    url,
    poll: async (timeoutMs) => await request('GET', `${url}&_=${Date.now()}${n++}`, { timeoutMs }),
    post: async (body, contentType = 'text/plain;charset=UTF-8') => await request('POST', url, { body, headers: { 'content-type': contentType } })
  }
  if (o.handshake === false) return client
  const first = await client.poll()
  if (first.status !== 200) throw new Error(`first poll: ${first.status}`)
  const hs = await client.post(`{"protocol":"${o.protocol ?? 'json'}","version":1}${RS}`)
  if (hs.status !== 200) throw new Error(`handshake POST: ${hs.status}`)
  const reply = await client.poll()
  if (reply.text !== `{}${RS}`) throw new Error(`handshake reply: ${reply.status} ${JSON.stringify(reply.text)}`)
  return client
}

interface EventStream {
  status: number
  headers: IncomingHttpHeaders
  /** Everything received so far. */
  data: () => string
  waitFor: (pred: (all: string) => boolean, what: string) => Promise<string>
  ended: Promise<void>
  destroy: () => void
}

/** A raw `Accept: text/event-stream` GET, read as it streams. */
async function openEventStream (t: Teardown, url: string): Promise<EventStream> {
  return await new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      let all = ''
      const waiters = new Set<() => void>()
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        all += chunk
        for (const w of waiters) w()
      })
      const ended = new Promise<void>((resolve) => { res.once('end', resolve); res.once('close', resolve) })
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        data: () => all,
        ended,
        destroy: () => { req.destroy() },
        waitFor: async (pred, what) => {
          if (pred(all)) return all
          return await new Promise<string>((resolve, reject) => {
            const timer = setTimeout(() => {
              waiters.delete(check)
              reject(new Error(`${what}: not within 5000ms; received ${JSON.stringify(all)}`))
            }, 5000)
            function check (): void {
              if (!pred(all)) return
              clearTimeout(timer)
              waiters.delete(check)
              resolve(all)
            }
            waiters.add(check)
          })
        }
      })
    })
    req.on('error', reject)
    t.teardown(() => { req.destroy() })
  })
}

/** Negotiates, opens the event stream and completes a JSON handshake over it. */
async function serverSentEvents (t: Teardown, server: TestServer): Promise<{ connectionId: string, token: string, url: string, stream: EventStream, post: (body: string | Buffer, headers?: Record<string, string>) => Promise<Reply> }> {
  const { connectionId, connectionToken } = await negotiate(server.url)
  const url = `${server.url}?id=${connectionToken}`
  const stream = await openEventStream(t, url)
  const post = async (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'text/plain;charset=UTF-8' }): Promise<Reply> => await request('POST', url, { body, headers })
  await stream.waitFor((s) => s.startsWith(':\r\n'), 'the opening comment')
  const hs = await post(`{"protocol":"json","version":1}${RS}`)
  if (hs.status !== 200) throw new Error(`handshake POST: ${hs.status}`)
  await stream.waitFor((s) => s.includes(`data: {}${RS}\r\n\r\n`), 'the handshake reply')
  return { connectionId, token: connectionToken, url, stream, post }
}

/** Negotiates and opens a WebSocket with a completed JSON handshake. */
async function webSocket (t: Teardown, server: TestServer): Promise<{ connectionId: string, token: string, url: string }> {
  const { connectionId, connectionToken } = await negotiate(server.url)
  const url = `${server.url}?id=${connectionToken}`
  const ws = await rawConnect(t, url.replace(/^http/, 'ws'))
  ws.send(`{"protocol":"json","version":1}${RS}`)
  const reply = await ws.next()
  if (reply !== `{}${RS}`) throw new Error(`handshake reply: ${String(reply)}`)
  return { connectionId, token: connectionToken, url }
}

/** The HTTP status a WebSocket upgrade gets (101 when it succeeds), and the refusal's body. */
async function upgrade (url: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'))
    ws.on('open', () => {
      ws.terminate()
      resolve({ status: 101, body: '' })
    })
    ws.on('unexpected-response', (req, res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })
        req.destroy()
      })
    })
    ws.on('error', reject)
  })
}

const sendItem = async (server: TestServer, connectionId: string, ...args: unknown[]): Promise<void> => {
  await server.app.signalr.hub(PATH).clients.client(connectionId).send('Item', ...args)
}

// =============================================================================================
// Long Polling (signalr-wire.md §2.3)

test('Long Polling: the first poll answers at once with an empty 200, octet-stream, no-cache', async (t) => {
  // A held first poll would run into the 5 s request timeout long before this 60 s hold
  const server = await startServer(t, { hub, path: PATH, plugin: { longPollTimeout: 60_000 } })
  const lp = await longPolling(server, { handshake: false })
  const first = await lp.poll(5000)
  t.equal(first.status, 200)
  t.equal(first.body.length, 0, 'empty body')
  t.equal(first.headers['content-length'], '0')
  t.equal(first.headers['content-type'], 'application/octet-stream')
  t.equal(first.headers['cache-control'], 'no-cache, no-store')
  t.equal(first.headers.pragma, 'no-cache')
  t.equal(first.headers.expires, 'Thu, 01 Jan 1970 00:00:00 GMT')
})

test('Long Polling: a later poll is held until there is data, then answered with it', async (t) => {
  const server = await startServer(t, { hub, path: PATH, plugin: { longPollTimeout: 60_000 } })
  const lp = await longPolling(server)
  const poll = lp.poll()
  t.ok(await stillPending(poll, 300), 'held while there is nothing to send')
  await sendItem(server, lp.connectionId, 'now')
  const res = await poll
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/octet-stream')
  t.equal(res.headers['cache-control'], 'no-cache, no-store')
  t.same(records(res.text), [{ type: 1, target: 'Item', arguments: ['now'] }])
})

test('Long Polling: everything queued between polls comes in one body of whole messages', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const lp = await longPolling(server)
  // An invocation whose Completion is queued, then five sends, all while no poll is waiting
  t.equal((await lp.post(`{"type":1,"invocationId":"1","target":"Echo","arguments":["e"]}${RS}`)).status, 200)
  await sleep(100)
  for (let i = 0; i < 5; i++) await sendItem(server, lp.connectionId, i)
  const res = await lp.poll()
  t.equal(res.status, 200)
  t.same(records(res.text), [
    { type: 3, invocationId: '1', result: 'e' },
    ...[0, 1, 2, 3, 4].map((i) => ({ type: 1, target: 'Item', arguments: [i] }))
  ], 'all six messages, whole and in order, in one response')
  t.ok(await stillPending(lp.poll(), 200), 'the queue was emptied: the next poll waits')
})

test('Long Polling: a poll held past longPollTimeout gets an empty 200 and the connection lives on', async (t) => {
  const server = await startServer(t, { hub, path: PATH, plugin: { longPollTimeout: 400, disconnectTimeout: 10_000 } })
  const lp = await longPolling(server)
  const started = Date.now()
  const res = await lp.poll()
  const held = Date.now() - started
  t.equal(res.status, 200)
  t.equal(res.body.length, 0, 'empty body')
  t.equal(res.headers['content-length'], '0')
  t.match(res.headers['content-type'], /^text\/plain/, 'text/plain, as ASP.NET Core answers a poll timeout')
  t.ok(held >= 300, `held about longPollTimeout (${held} ms)`)
  const next = lp.poll()
  await sendItem(server, lp.connectionId, 'after')
  t.same(records((await next).text), [{ type: 1, target: 'Item', arguments: ['after'] }], 'the next poll still gets data')
})

test('Long Polling: a newer poll ends the pending one with 204', async (t) => {
  const seen = arrivals()
  const server = await startServer(t, { hub, path: PATH, route: { onRequest: seen.hook } })
  const lp = await longPolling(server)
  const isPoll = (r: FastifyRequest): boolean => r.method === 'GET'
  const polls = (): number => seen.seen.filter(isPoll).length
  const before = polls()
  const older = lp.poll()
  await seen.waitFor(() => polls() > before)
  const newer = lp.poll()
  const ended = await older
  t.equal(ended.status, 204, 'the older poll ends with 204')
  t.equal(ended.body.length, 0)
  t.ok(await stillPending(newer, 200), 'the newer poll is the one held')
  await sendItem(server, lp.connectionId, 'to newer')
  const res = await newer
  t.equal(res.status, 200)
  t.same(records(res.text), [{ type: 1, target: 'Item', arguments: ['to newer'] }])
})

test('Long Polling: DELETE answers 202 and ends the connection; the pending poll and later ones get 204', async (t) => {
  const seen = arrivals()
  const server = await startServer(t, { hub, path: PATH, route: { onRequest: seen.hook } })
  const lp = await longPolling(server)
  const count = seen.seen.length
  const pending = lp.poll()
  await seen.waitFor(() => seen.seen.length > count)
  const del = await request('DELETE', lp.url)
  t.equal(del.status, 202)
  t.match(del.headers['content-type'], /^text\/plain/)
  t.equal((await pending).status, 204, 'the pending poll ends with 204')
  const err = await within(disconnected(lp.connectionId).promise, 5000, 'onDisconnected')
  t.equal(err, undefined, 'onDisconnected ran, without an error: the client ended it')
  t.equal((await lp.poll()).status, 204, 'a poll after the end gets 204')
  t.equal((await lp.poll()).status, 204, 'and so does the next')
  t.equal((await lp.post(`{"type":6}${RS}`)).status, 404, 'a send after the end finds no connection')
})

test('Long Polling: no poll within disconnectTimeout disposes the connection and onDisconnected runs', async (t) => {
  const server = await startServer(t, { hub, path: PATH, plugin: { longPollTimeout: 150, disconnectTimeout: 600 } })
  const lp = await longPolling(server)
  const gone = disconnected(lp.connectionId).promise
  // Polling back to back keeps it alive far beyond disconnectTimeout
  const keepUntil = Date.now() + 1500
  while (Date.now() < keepUntil) t.equal((await lp.poll()).status, 200, 'poll timeout: empty 200')
  t.ok(await stillPending(gone, 0), 'alive while the client polls')
  const stopped = Date.now()
  const error = await within(gone, 5000, 'onDisconnected')
  const after = Date.now() - stopped
  t.ok(after >= 450, `disposed about disconnectTimeout after the last poll (${after} ms)`)
  t.type(error, Error, 'onDisconnected gets the reason')
  t.equal((await lp.post(`{"type":6}${RS}`)).status, 404, 'the connection is gone')
})

test('Long Polling with MessagePack: binary bodies, VarInt framed', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const lp = await longPolling(server, { protocol: 'messagepack' })
  // The client's binary POST, as the JS client sends it
  const sent = await lp.post(msgpackFrame([1, {}, '7', 'Echo', ['hé']]), 'application/octet-stream')
  t.equal(sent.status, 200)
  const reply = await lp.poll()
  t.equal(reply.status, 200)
  t.equal(reply.headers['content-type'], 'application/octet-stream')
  t.same(binaryFrames(reply.body).map((f) => f.message), [[3, {}, '7', 3, 'hé']], 'a result Completion')

  const long = 'x'.repeat(300)
  await sendItem(server, lp.connectionId, long)
  await sendItem(server, lp.connectionId, 1)
  const body = (await lp.poll()).body
  t.equal(body[0] & 0x80, 0x80, 'a frame over 127 bytes has a multi-byte length prefix')
  const frames = binaryFrames(body)
  t.equal(frames.length, 2, 'two whole frames in one body')
  t.equal(frames[0].prefix, 2)
  t.match(frames[0].message, [1, {}, null, 'Item', [long]])
  t.match(frames[1].message, [1, {}, null, 'Item', [1]])
})

// =============================================================================================
// Server-Sent Events (signalr-wire.md §2.2)

test('SSE: exact response headers, and `:\\r\\n` before anything else', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const { connectionToken } = await negotiate(server.url)
  const stream = await openEventStream(t, `${server.url}?id=${connectionToken}`)
  t.equal(stream.status, 200)
  t.equal(stream.headers['content-type'], 'text/event-stream')
  t.equal(stream.headers['cache-control'], 'no-cache,no-store')
  t.equal(stream.headers.pragma, 'no-cache')
  t.equal(stream.headers['content-encoding'], 'identity')
  const first = await stream.waitFor((s) => s.length >= 3, 'the first bytes')
  t.equal(first, ':\r\n', 'the comment comes at once, and nothing else before the handshake')
})

test('SSE: each event is `data: <payload>\\r\\n\\r\\n` holding whole messages', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const sse = await serverSentEvents(t, server)
  for (let i = 0; i < 4; i++) await sendItem(server, sse.connectionId, i)
  await sendItem(server, sse.connectionId, 'line\nbreak and \u001e inside')
  // Messages of one turn may share an event: wait for six records, however they are grouped
  const all = await sse.stream.waitFor((s) => s.split(RS).length - 1 >= 6 && s.endsWith('\r\n\r\n'), 'six messages')
  t.match(all, /^:\r\n(data: [^\r\n]*\r\n\r\n)+$/, 'only the comment and single-line data events, CRLF throughout')
  const events = all.slice(3).split('\r\n\r\n').slice(0, -1)
  const messages = events.flatMap((e) => records(e.slice('data: '.length)))
  t.same(messages, [
    {},
    ...[0, 1, 2, 3].map((i) => ({ type: 1, target: 'Item', arguments: [i] })),
    { type: 1, target: 'Item', arguments: ['line\nbreak and \u001e inside'] }
  ], 'every event parses as whole records')
})

test('SSE: the send endpoint takes raw bytes with any content-type, or none', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const sse = await serverSentEvents(t, server)
  const variants: Array<[string, Record<string, string>]> = [
    ['text/plain;charset=UTF-8 (JS, strings)', { 'content-type': 'text/plain;charset=UTF-8' }],
    ['application/octet-stream (JS, ArrayBuffers)', { 'content-type': 'application/octet-stream' }],
    ['application/json', { 'content-type': 'application/json' }],
    ['no content-type (.NET)', {}]
  ]
  for (const [i, [name, headers]] of variants.entries()) {
    const res = await sse.post(`{"type":1,"invocationId":"${i}","target":"Echo","arguments":["v${i}"]}${RS}`, headers)
    t.equal(res.status, 200, `${name}: 200`)
    t.equal(res.text, '', `${name}: empty body`)
    await sse.stream.waitFor((s) => s.includes(`data: {"type":3,"invocationId":"${i}","result":"v${i}"}${RS}\r\n\r\n`), `${name}: the Completion`)
    t.pass(`${name}: the invocation ran`)
  }
  // One message split across two POSTs is reassembled
  const whole = `{"type":1,"invocationId":"9","target":"Echo","arguments":["split"]}${RS}`
  t.equal((await sse.post(whole.slice(0, 20), {})).status, 200)
  t.equal((await sse.post(whole.slice(20), {})).status, 200)
  await sse.stream.waitFor((s) => s.includes('"invocationId":"9","result":"split"'), 'the split message')
  t.pass('a message split across POSTs is reassembled')
})

test('SSE: a dropped stream is detected and onDisconnected runs', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const sse = await serverSentEvents(t, server)
  const gone = disconnected(sse.connectionId).promise
  t.ok(await stillPending(gone, 100), 'connected while the stream is open')
  sse.stream.destroy()
  await within(gone, 5000, 'onDisconnected')
  t.pass('onDisconnected ran')
  t.equal((await sse.post(`{"type":6}${RS}`)).status, 404, 'the connection is gone')
})

test('SSE: a second event-stream GET for the same connection gets 409', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const sse = await serverSentEvents(t, server)
  const second = await request('GET', sse.url, { headers: { accept: 'text/event-stream' } })
  t.equal(second.status, 409)
  t.match(second.headers['content-type'], /^text\/plain/)
  await sendItem(server, sse.connectionId, 'still')
  await sse.stream.waitFor((s) => s.includes('"arguments":["still"]'), 'the first stream still works')
  t.pass('the first stream is untouched')
})

test('SSE: a MessagePack handshake is refused with the transfer-format handshake error', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const { connectionId, connectionToken } = await negotiate(server.url)
  const url = `${server.url}?id=${connectionToken}`
  const stream = await openEventStream(t, url)
  await stream.waitFor((s) => s.startsWith(':\r\n'), 'the opening comment')
  t.equal((await request('POST', url, { body: `{"protocol":"messagepack","version":1}${RS}` })).status, 200)
  const error = "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."
  await stream.waitFor((s) => s.includes('\r\n\r\n'), 'the handshake reply')
  await within(stream.ended, 5000, 'the end of the stream')
  t.equal(stream.data(), `:\r\ndata: ${JSON.stringify({ error })}${RS}\r\n\r\n`, 'the handshake error, then the stream ends')
  t.ok(await stillPending(disconnected(connectionId).promise, 100), 'the hub never saw the connection')
})

// =============================================================================================
// Status codes shared by the transports (signalr-wire.md §2.0, §2.4)

/** The four requests that carry a connection id: poll, event stream, send, DELETE. */
const EVERY_TRANSPORT_REQUEST: Array<[string, string, Record<string, string>]> = [
  ['long poll', 'GET', {}],
  ['event stream', 'GET', { accept: 'text/event-stream' }],
  ['send', 'POST', { 'content-type': 'text/plain;charset=UTF-8' }],
  ['DELETE', 'DELETE', {}]
]

test('a transport request without an id: 400 Connection ID required', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  for (const [name, method, headers] of EVERY_TRANSPORT_REQUEST) {
    const res = await request(method, server.url, { headers, body: method === 'POST' ? `{"type":6}${RS}` : undefined })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.text, 'Connection ID required', `${name}: the spec's text`)
    t.match(res.headers['content-type'], /^text\/plain/)
  }
})

test('a transport request with an unknown id: 404 No Connection with that ID', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const url = `${server.url}?id=AAAAAAAAAAAAAAAAAAAAAA`
  for (const [name, method, headers] of EVERY_TRANSPORT_REQUEST) {
    const res = await request(method, url, { headers, body: method === 'POST' ? `{"type":6}${RS}` : undefined })
    t.equal(res.status, 404, `${name}: 404`)
    t.equal(res.text, 'No Connection with that ID', `${name}: the spec's text`)
  }
  t.same(await upgrade(url), { status: 404, body: 'No Connection with that ID' }, 'WebSocket upgrade: 404 before the upgrade')
})

test('POST on a WebSocket connection: 405', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const ws = await webSocket(t, server)
  const res = await request('POST', ws.url, { body: `{"type":6}${RS}`, headers: { 'content-type': 'text/plain;charset=UTF-8' } })
  t.equal(res.status, 405)
  t.equal(res.text, 'POST requests are not allowed for WebSocket connections.')
})

test('DELETE on a connection that is not Long Polling: 400', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const ws = await webSocket(t, server)
  const sse = await serverSentEvents(t, server)
  for (const [name, url] of [['WebSockets', ws.url], ['Server-Sent Events', sse.url]]) {
    const res = await request('DELETE', url)
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.text, 'Cannot terminate this connection using the DELETE endpoint.')
  }
  t.ok(await stillPending(disconnected(sse.connectionId).promise, 100), 'the connection lives on')
})

test('switching transports mid-connection: 400', async (t) => {
  const server = await startServer(t, { hub, path: PATH, plugin: { longPollTimeout: 60_000 } })
  const text = 'Cannot change transports mid-connection'
  const eventStream = async (url: string): Promise<Reply> => await request('GET', url, { headers: { accept: 'text/event-stream' } })
  const poll = async (url: string): Promise<Reply> => await request('GET', `${url}&_=1`)

  const lp = await longPolling(server)
  for (const [name, res] of [['LP then SSE', await eventStream(lp.url)], ['LP then WebSockets', await upgrade(lp.url)]] as const) {
    t.equal(res.status, 400, `${name}: 400`)
    t.equal('text' in res ? res.text : res.body, text)
  }
  const sse = await serverSentEvents(t, server)
  for (const [name, res] of [['SSE then LP', await poll(sse.url)], ['SSE then WebSockets', await upgrade(sse.url)]] as const) {
    t.equal(res.status, 400, `${name}: 400`)
    t.equal('text' in res ? res.text : res.body, text)
  }
  const ws = await webSocket(t, server)
  for (const [name, res] of [['WebSockets then LP', await poll(ws.url)], ['WebSockets then SSE', await eventStream(ws.url)]] as const) {
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.text, text)
  }
})

test('PUT and PATCH on the hub path: 405', async (t) => {
  const server = await startServer(t, { hub, path: PATH })
  const { connectionToken } = await negotiate(server.url)
  for (const method of ['PUT', 'PATCH']) {
    for (const url of [server.url, `${server.url}?id=${connectionToken}`]) {
      const res = await request(method, url, { body: 'x', headers: { 'content-type': 'text/plain' } })
      t.equal(res.status, 405, `${method} ${url.includes('?') ? 'with' : 'without'} an id`)
      t.match(res.headers['content-type'], /^text\/plain/)
    }
  }
})

test('a transport disabled by the hub\'s options: 404 naming it', async (t) => {
  const server = await startServer(t, {
    hub,
    path: PATH,
    route: { transports: ['ServerSentEvents', 'LongPolling'] },
    setup (app) { app.hub('/hubs/ws-only', hub, { transports: ['WebSockets'] }) }
  })
  const noWs = await negotiate(server.url)
  t.same(await upgrade(`${server.url}?id=${noWs.connectionToken}`), { status: 404, body: 'WebSockets transport not supported by this end point type' })
  const wsOnlyUrl = `${server.base}/hubs/ws-only`
  const wsOnly = await negotiate(wsOnlyUrl)
  const sse = await request('GET', `${wsOnlyUrl}?id=${wsOnly.connectionToken}`, { headers: { accept: 'text/event-stream' } })
  t.equal(sse.status, 404)
  t.equal(sse.text, 'ServerSentEvents transport not supported by this end point type')
  const lp = await request('GET', `${wsOnlyUrl}?id=${wsOnly.connectionToken}&_=1`)
  t.equal(lp.status, 404)
  t.equal(lp.text, 'LongPolling transport not supported by this end point type')
  t.equal((await upgrade(`${wsOnlyUrl}?id=${wsOnly.connectionToken}`)).status, 101, 'the allowed one still works')
})

// =============================================================================================
// The official client and a hub that restricts its transports (signalr-wire.md §1.4)

const ALL = signalR.HttpTransportType.WebSockets | signalR.HttpTransportType.ServerSentEvents | signalR.HttpTransportType.LongPolling

function officialClient (t: Teardown, url: string, transport: signalR.HttpTransportType, headers?: Record<string, string>): signalR.HubConnection {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport, headers })
    .configureLogging(signalR.LogLevel.None)
    .build()
  t.teardown(async () => { await connection.stop() })
  return connection
}

const kindOf = (r: FastifyRequest): string =>
  r.url.split('?')[0].endsWith('/negotiate')
    ? 'negotiate'
    : r.headers.upgrade !== undefined
      ? 'ws'
      : (r.headers.accept ?? '').includes('text/event-stream') ? 'sse' : `${r.method} transport`

test('the official client uses the first transport the hub allows, and fails when it allows none of its own', async (t) => {
  const seen = arrivals()
  const server = await startServer(t, { hub, path: PATH, route: { transports: ['ServerSentEvents', 'LongPolling'], onRequest: seen.hook } })

  const any = officialClient(t, server.url, ALL)
  await any.start()
  t.equal(await any.invoke('Echo', 'over sse'), 'over sse')
  const kinds = seen.seen.map(kindOf)
  t.equal(kinds[0], 'negotiate')
  t.equal(kinds[1], 'sse', 'the first transport request is the event stream: WebSockets was never offered')
  t.notOk(kinds.includes('ws'), 'no upgrade was attempted')
  await any.stop()

  const wsOnly = officialClient(t, `${server.url}?client=ws-only`, signalR.HttpTransportType.WebSockets)
  await t.rejects(wsOnly.start(), { message: /^Unable to connect to the server with any of the available transports\./ })
  const its = seen.seen.filter((r) => (r.query as Record<string, string>).client === 'ws-only')
  t.same(its.map(kindOf), ['negotiate'], 'it negotiated and tried nothing else')
})

test('the official client falls back to the next transport when one fails to start', async (t) => {
  const seen = arrivals()
  // The upgrade is refused (403, a disallowed Origin); the client renegotiates and takes SSE
  const server = await startServer(t, { hub, path: PATH, route: { allowedOrigins: ['http://allowed.example'], onRequest: seen.hook } })
  const client = officialClient(t, server.url, ALL, { Origin: 'http://elsewhere.example' })
  await client.start()
  t.equal(await client.invoke('Echo', 'fell back'), 'fell back')
  t.same(seen.seen.map(kindOf).slice(0, 4), ['negotiate', 'ws', 'negotiate', 'sse'], 'WebSockets failed, a new negotiate, then SSE')
})
