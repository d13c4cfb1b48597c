// A burst produced for clients that read: nobody may be cut for it. The outbound hard cap
// once counted bytes still in the turn's unflushed write batch, so more than 1 MiB produced
// for one connection within one turn aborted it with FST_SIGNALR_OUTBOUND_BUFFER_FULL though
// it was reading fast: one JSON message carrying 21,000 `Send` calls to the README's chat
// hub cut 20 of 20 official-client neighbours, and a hub method sending 40 × 32 KiB to its
// caller cut its own caller. Now the cap counts only what a client left unread, a batch is
// written once it is large, and senders wait while a reading client is congested.
import { setImmediate as yieldToIo } from 'node:timers/promises'
import { test } from 'tap'
import Type from 'typebox'
import WebSocket from 'ws'
import { defineHub } from '../index.js'
import { connect, signalR, VALID_MATRIX, type ProtocolName, type TransportName } from './fixtures/client.js'
import { openRawJson, serverSocketOf } from './fixtures/raw-json.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'
import { handshake, negotiate, RS } from './fixtures/wire.js'

const path = '/hubs/burst'
const disconnects = new Map<string, Error | undefined>()
const hub = defineHub({
  methods: {
    // The README's chat hub
    Send: {
      args: [Type.String({ maxLength: 64 }), Type.String({ maxLength: 2000 })],
      async handler (ctx, user, text) { await ctx.clients.all.send('ReceiveMessage', user, text) }
    },
    // A method that sends its caller more than the hard cap, one awaited send at a time
    Burst: {
      args: [Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 1 })],
      async handler (ctx, count, size) {
        for (let i = 0; i < count; i++) await ctx.clients.caller.send('Chunk', i, 'x'.repeat(size))
        return count
      }
    },
    Fill: { args: [Type.String()], async handler (ctx, text) { await ctx.clients.caller.send('Fill', text) } }
  },
  onDisconnected (ctx, error) { disconnects.set(ctx.connectionId, error) }
})

const SENDS = 21_000
const SEND = `{"type":1,"target":"Send","arguments":["a","b"]}${RS}`

/** One WebSocket message of SENDS non-blocking Send invocations, just under 1 MiB. */
function burstMessage (): string {
  const message = SEND.repeat(SENDS)
  if (Buffer.byteLength(message) > 1024 * 1024) throw new Error('the burst must fit in one WebSocket message')
  return message
}

async function rawAttacker (base: string): Promise<WebSocket> {
  const { ws } = await openRawJson(base, path)
  ws.on('message', () => {})
  return ws
}

interface Reader { transport: TransportName, protocol: ProtocolName, connection: signalR.HubConnection, received: number, closed: Error | undefined | null }

test('one message of 21,000 Sends to the chat hub: 20 readers on every transport get all of it, none is cut', async (t) => {
  const { base, url } = await startServer(t, { hub, path })
  const readers: Reader[] = []
  for (let i = 0; i < 20; i++) {
    const [transport, protocol] = VALID_MATRIX[i % VALID_MATRIX.length]
    const connection = await connect(t, url, { transport, protocol })
    const r: Reader = { transport, protocol, connection, received: 0, closed: null }
    connection.on('ReceiveMessage', () => { r.received++ })
    connection.onclose((err) => { r.closed = err })
    readers.push(r)
  }
  const attacker = await rawAttacker(base)
  t.teardown(() => { attacker.terminate() })
  attacker.send(burstMessage())
  await until(() => readers.every((r) => r.received === SENDS || r.closed !== null), 120_000)
  for (const r of readers) {
    t.equal(r.closed, null, `${r.transport}/${r.protocol}: still connected`)
    t.equal(r.received, SENDS, `${r.transport}/${r.protocol}: got all ${SENDS} messages`)
  }
  t.equal(attacker.readyState, WebSocket.OPEN, 'the sender itself is paced, not cut')
})

test('a hub method sending 40 × 32 KiB to its caller: the caller gets all of it on every transport', async (t) => {
  const { url } = await startServer(t, { hub, path })
  for (const [transport, protocol] of VALID_MATRIX) {
    const connection = await connect(t, url, { transport, protocol })
    let chunks = 0
    let bytes = 0
    connection.on('Chunk', (_i: number, text: string) => { chunks++; bytes += text.length })
    const result = await connection.invoke('Burst', 40, 32 * 1024).then((r: number) => r, (err: Error) => err.message)
    await until(() => chunks === 40 || connection.state !== signalR.HubConnectionState.Connected, 10_000)
    t.equal(result, 40, `${transport}/${protocol}: the method completed`)
    t.equal(chunks, 40, `${transport}/${protocol}: all 40 chunks arrived (${bytes} bytes)`)
    t.equal(connection.state, signalR.HubConnectionState.Connected, `${transport}/${protocol}: and the caller is still connected`)
    await connection.stop()
  }
})

test('a stalled reader among them is still closed by the send timeout', async (t) => {
  disconnects.clear()
  const maxBuffer = 512 * 1024
  const sendTimeout = 2000
  const { app, base, url } = await startServer(t, { hub, path, plugin: { transportMaxBufferSize: maxBuffer, transportSendTimeout: sendTimeout } })
  const readers: Reader[] = []
  for (const [transport, protocol] of VALID_MATRIX) {
    const connection = await connect(t, url, { transport, protocol })
    const r: Reader = { transport, protocol, connection, received: 0, closed: null }
    connection.on('ReceiveMessage', () => { r.received++ })
    connection.onclose((err) => { r.closed = err })
    readers.push(r)
  }
  // The stalled one: its socket paused, and the kernel's buffers filled first so that the
  // server itself holds what it is sent
  const neg = await negotiate(base, path)
  const stalled = new WebSocket(`${base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`)
  t.teardown(() => { stalled.terminate() })
  await new Promise<void>((resolve, reject) => { stalled.once('open', resolve); stalled.once('error', reject) })
  stalled.send(handshake('json'))
  await new Promise<void>((resolve) => { stalled.once('message', () => { resolve() }) })
  const socket = serverSocketOf(app, stalled)
  ;(stalled as unknown as { _socket: { pause: () => void } })._socket.pause()
  const chunk = 'f'.repeat(1800)
  for (let sent = 0; socket.bufferedAmount <= maxBuffer; sent += chunk.length) {
    if (sent > 32 * 1024 * 1024) throw new Error('the kernel absorbed more than 32 MiB: cannot stall the client')
    stalled.send(`{"type":1,"target":"Fill","arguments":["${chunk}"]}${RS}`)
    await yieldToIo()
    await yieldToIo()
  }
  const stalledAt = Date.now()
  const attacker = await rawAttacker(base)
  t.teardown(() => { attacker.terminate() })
  attacker.send(burstMessage())
  await until(() => readers.every((r) => r.received === SENDS || r.closed !== null), 120_000)
  const deliveredIn = Date.now() - stalledAt
  for (const r of readers) t.equal(r.received, SENDS, `${r.transport}/${r.protocol}: got all ${SENDS} messages, none cut`)
  t.comment(`the readers had everything ${deliveredIn} ms after the burst`)
  await until(() => disconnects.has(neg.connectionId), 10_000)
  t.match(disconnects.get(neg.connectionId), { code: 'FST_SIGNALR_SEND_TIMEOUT' }, 'the stalled reader was closed by the send timeout')
  t.ok(Date.now() - stalledAt >= sendTimeout, 'not before it')
})
