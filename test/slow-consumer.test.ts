// A client that stops reading while the server broadcasts to it and to 100 others. The others
// get every message in order; the stalled one is closed after transportSendTimeout, or at
// once when its unsent bytes pass 4 × transportMaxBufferSize; the server's memory does not
// grow with the size of the broadcast.
//
// The stalled client pauses its TCP socket. The kernel then absorbs a few MB (the server's
// send buffer grows up to net.ipv4.tcp_wmem's maximum, 4 MiB here) before anything stays in
// the server's process: each test first fills that with sends to the stalled client alone.
import { setImmediate as yieldToIo } from 'node:timers/promises'
import { test } from 'tap'
import Type from 'typebox'
import type { WebSocket as ServerSocket } from 'ws'
import WebSocket from 'ws'
import type { FastifyInstance } from 'fastify'
import { defineHub } from '../index.js'
import { upgradesOf } from '../lib/transports/upgrade.js'
import { connect, signalR } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'
import { HANDSHAKE_OK, handshake, negotiate } from './fixtures/wire.js'

const path = '/hubs/slow'
const MAX_BUFFER = 64 * 1024
const SEND_TIMEOUT = 500
const CAP = 4 * MAX_BUFFER

const disconnects = new Map<string, Error | undefined>()
const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], handler: (_ctx, s) => s },
    Big: { args: [Type.Integer({ minimum: 0 })], handler: (_ctx, n) => 'x'.repeat(n) }
  },
  onDisconnected (ctx, error) { disconnects.set(ctx.connectionId, error) }
})

/** A raw JSON client that reads everything and checks the Receive(i) sequence, keeping nothing. */
interface Reader {
  ws: WebSocket
  connectionId: string
  received: number
  errors: string[]
}

const PREFIX = Buffer.from('{"type":1,"target":"Receive","arguments":["')

async function reader (base: string): Promise<Reader> {
  const neg = await negotiate(base, path)
  const ws = new WebSocket(`${base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`)
  const r: Reader = { ws, connectionId: neg.connectionId, received: 0, errors: [] }
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send(handshake('json'))
  await new Promise<void>((resolve, reject) => {
    ws.once('message', (data: Buffer) => { data.equals(HANDSHAKE_OK) ? resolve() : reject(new Error('bad handshake reply')) })
  })
  ws.on('message', (data: Buffer) => {
    // The server joins the messages of one turn into one WebSocket message: walk its records
    for (let start = 0; start < data.length;) {
      let end = data.indexOf(0x1e, start)
      if (end === -1) end = data.length
      if (data.subarray(start, start + PREFIX.length).equals(PREFIX)) {
        const colon = data.indexOf(0x3a, start + PREFIX.length)
        const i = Number(data.subarray(start + PREFIX.length, colon).toString())
        if (i !== r.received) r.errors.push(`got ${i}, expected ${r.received}`)
        r.received = i + 1
      }
      start = end + 1
    }
  })
  return r
}

async function readers (base: string, n: number): Promise<Reader[]> {
  const out: Reader[] = []
  for (let i = 0; i < n; i += 25) out.push(...await Promise.all(Array.from({ length: Math.min(25, n - i) }, async () => await reader(base))))
  return out
}

/** The server side of a client's socket. */
function serverSocket (app: FastifyInstance, client: WebSocket): ServerSocket {
  const port = (client as unknown as { _socket: { localPort: number } })._socket.localPort
  for (const s of upgradesOf(app.signalr).clients()) {
    if ((s as unknown as { _socket: { remotePort: number } })._socket.remotePort === port) return s
  }
  throw new Error('no server socket for that client')
}

interface Setup {
  app: Awaited<ReturnType<typeof startServer>>['app']
  send: (target: 'all' | string, text: string) => Promise<void>
  stalled: Reader
  stalledSocket: ServerSocket
  others: Reader[]
}

async function setup (t: Parameters<typeof startServer>[0], others: number, sendTimeout = SEND_TIMEOUT): Promise<Setup> {
  const { app, base } = await startServer(t, {
    hub,
    path,
    plugin: { transportSendTimeout: sendTimeout, transportMaxBufferSize: MAX_BUFFER, keepAliveInterval: 60_000 }
  })
  const all = await readers(base, others + 1)
  t.teardown(() => { for (const r of all) r.ws.terminate() })
  const stalled = all[others]
  const stalledSocket = serverSocket(app, stalled.ws)
  ;(stalled.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const ctx = app.signalr.hub(path)
  return {
    app,
    stalled,
    stalledSocket,
    others: all.slice(0, others),
    send: async (target, text) => {
      if (target === 'all') await ctx.clients.all.send('Receive', text)
      else await ctx.clients.client(target).send('Fill', text)
    }
  }
}

/** Sends to the stalled client alone until the kernel holds all it will and the server holds `over` bytes. */
async function fillKernel (s: Setup, over: number): Promise<number> {
  const chunk = 'f'.repeat(8 * 1024)
  let sent = 0
  while (s.stalledSocket.bufferedAmount <= over) {
    if (sent > 20 * 1024 * 1024) throw new Error('the kernel absorbed more than 20 MiB: cannot stall the client')
    await s.send(s.stalled.connectionId, chunk)
    sent += chunk.length
    await yieldToIo()
  }
  return sent
}

function payload (i: number, size: number): string {
  const head = `${i}:`
  return head + 'x'.repeat(size - head.length)
}

test('a stalled client is closed after transportSendTimeout; 100 others get every broadcast message, in order', async (t) => {
  const s = await setup(t, 100)
  const absorbed = await fillKernel(s, MAX_BUFFER)
  const stalledAt = Date.now()
  t.comment(`the kernel absorbed ${(absorbed / 1024 / 1024).toFixed(1)} MiB before the server held more than ${MAX_BUFFER} bytes`)
  // A broadcast that keeps the stalled client's backlog between the stall threshold and the hard cap
  const count = 100
  let maxBuffered = 0
  for (let i = 0; i < count; i++) {
    await s.send('all', payload(i, 1024))
    maxBuffered = Math.max(maxBuffered, s.stalledSocket.bufferedAmount)
    if (i % 10 === 9) await yieldToIo()
  }
  t.ok(maxBuffered > MAX_BUFFER && maxBuffered < CAP, `backlog up to ${maxBuffered} bytes: stalled, under the hard cap`)
  await until(() => disconnects.has(s.stalled.connectionId), 5000)
  const after = Date.now() - stalledAt
  t.match(disconnects.get(s.stalled.connectionId), { code: 'FST_SIGNALR_SEND_TIMEOUT' }, 'onDisconnected gets FST_SIGNALR_SEND_TIMEOUT')
  t.ok(after >= SEND_TIMEOUT, `not before transportSendTimeout (${after} ms)`)
  // The check runs on the heartbeat (every transportSendTimeout / 4 here); slack for a loaded CI machine
  t.ok(after < SEND_TIMEOUT + 2500, `soon after it (${after} ms)`)
  t.equal(s.app.signalr.connectionCount, 100, 'the stalled connection left the registry')
  // The broadcast goes on for the others
  for (let i = count; i < count + 20; i++) await s.send('all', payload(i, 1024))
  await until(() => s.others.every((r) => r.received === count + 20), 10_000)
  t.same(s.others.flatMap((r) => r.errors), [], 'in order, none missing, none twice')
  t.equal(s.others.filter((r) => r.received === count + 20).length, 100, `all 100 readers got all ${count + 20} messages`)
  t.equal(await s.app.signalr.hub(path).connectionCount(), 100)
})

test('a large broadcast to a stalled client: cut at 4 × transportMaxBufferSize, the others get all of it', async (t) => {
  disconnects.clear()
  // A send timeout far longer than the test: only the hard cap may close the stalled client
  const s = await setup(t, 100, 60_000)
  await fillKernel(s, MAX_BUFFER)
  const count = 2000
  let maxBuffered = 0
  for (let i = 0; i < count; i++) {
    await s.send('all', payload(i, 1024))
    if (s.stalledSocket.readyState === WebSocket.OPEN) maxBuffered = Math.max(maxBuffered, s.stalledSocket.bufferedAmount)
    if (i % 10 === 9) await yieldToIo()
  }
  t.comment(`the stalled connection's backlog peaked at ${maxBuffered} bytes (hard cap ${CAP})`)
  t.ok(maxBuffered <= CAP + 1100, `the server never held much more than the cap for it (${maxBuffered} bytes; unbounded would be ~2 MB)`)
  await until(() => disconnects.has(s.stalled.connectionId), 2000)
  t.match(disconnects.get(s.stalled.connectionId), { code: 'FST_SIGNALR_OUTBOUND_BUFFER_FULL' }, 'closed at once by the hard cap')
  await until(() => s.others.every((r) => r.received === count), 20_000)
  t.same(s.others.flatMap((r) => r.errors), [], 'in order, none missing, none twice')
  t.equal(s.app.signalr.connectionCount, 100)
})

test('what the server holds stays bounded while a stalled client is sent far more than the cap', async (t) => {
  disconnects.clear()
  // A send timeout far longer than the test: only the hard cap can bound the backlog
  const s = await setup(t, 5, 60_000)
  await fillKernel(s, MAX_BUFFER)
  // What the server holds for each connection, sampled after every send: bytes its sockets
  // have not taken yet. (Process-wide heap readings swing by tens of MiB between runs; these
  // are the bytes that would grow if anything were unbounded.)
  const held = (): { stalled: number, others: number } => {
    let others = 0
    for (const socket of upgradesOf(s.app.signalr).clients()) if (socket !== s.stalledSocket) others = Math.max(others, socket.bufferedAmount)
    return { stalled: s.stalledSocket.readyState === WebSocket.OPEN ? s.stalledSocket.bufferedAmount : 0, others }
  }
  let maxStalled = 0
  let maxOthers = 0
  // 2000 × 8 KiB = 16 MiB to every connection: an unbounded queue would hold ~16 MiB for the stalled one
  const count = 2000
  for (let i = 0; i < count; i++) {
    await s.send('all', payload(i, 8 * 1024))
    const h = held()
    maxStalled = Math.max(maxStalled, h.stalled)
    maxOthers = Math.max(maxOthers, h.others)
    if (i % 4 === 3) await yieldToIo()
  }
  await until(() => s.others.every((r) => r.received === count), 20_000)
  t.comment(`held for the stalled client at most ${maxStalled} bytes, for a reader at most ${maxOthers} bytes, of a 16 MiB broadcast`)
  t.ok(maxStalled <= CAP + 8 * 1024 + 200, `for the stalled client: at most the hard cap plus one message (${maxStalled} bytes)`)
  t.ok(maxOthers <= CAP, `for a reader: never more than the cap (${maxOthers} bytes)`)
  t.match(disconnects.get(s.stalled.connectionId), { code: 'FST_SIGNALR_OUTBOUND_BUFFER_FULL' }, 'the hard cap closed it')
  t.equal(held().stalled, 0, 'and nothing is held for it afterwards')
  t.same(s.others.flatMap((r) => r.errors), [], 'the readers got everything in order')
})

test('one message larger than the hard cap reaches a client that reads, on every transport', async (t) => {
  disconnects.clear()
  const { url } = await startServer(t, { hub, path })
  for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const) {
    const c = await connect(t, url, { transport })
    const size = 1200 * 1024
    const result = await c.invoke('Big', size).then((r) => (r as string).length, (err: Error) => err.message)
    t.equal(result, size, `${transport}: a ${size}-byte result arrives`)
    t.equal(c.state, signalR.HubConnectionState.Connected, 'and the connection lives on')
  }
})
