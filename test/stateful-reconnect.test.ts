// Stateful reconnect: the official client (withStatefulReconnect) loses its socket in the
// middle of bursts both ways and resumes on the same connection, nothing lost or doubled.
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { upgradesOf } from '../lib/transports/upgrade.js'
import { connect, type ProtocolName } from './fixtures/client.js'
import { rawConnect, RS } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

for (const protocol of ['json', 'messagepack'] as ProtocolName[]) {
  test(`${protocol}: a cut socket mid-burst resumes with no message lost and none duplicated`, async (t) => {
    const received: number[] = []
    let disconnects = 0
    const hub = defineHub({
      methods: {
        Burst: {
          args: [Type.Integer(), Type.Integer()],
          async handler (ctx, n, delayMs) {
            for (let i = 0; i < n; i++) {
              await ctx.clients.caller.send('Item', i)
              if (delayMs > 0) await sleep(delayMs)
            }
            return n
          }
        },
        Record: { args: [Type.Integer()], handler: (_ctx, i) => { received.push(i) } }
      },
      onDisconnected () { disconnects++ }
    })
    const { app, url } = await startServer(t, { hub, plugin: { allowStatefulReconnects: true } })
    const c = await connect(t, url, { protocol, statefulReconnect: true })
    const id = c.connectionId
    let closed = false
    c.onclose(() => { closed = true })
    const items: number[] = []
    c.on('Item', (i: number) => { items.push(i) })

    // Server to client: cut the socket while the server is half-way through 300 sends
    const burst = c.invoke('Burst', 300, 1)
    await until(() => items.length >= 60)
    for (const ws of upgradesOf(app.signalr).clients()) ws.terminate()
    t.equal(await burst, 300, 'the invocation completes after the reconnect')
    await until(() => items.length >= 300)
    await sleep(50)
    t.same(items, range(300), 'every item once, in order')

    // Client to server: cut while the client sends 200 messages
    for (let i = 0; i < 200; i++) {
      await c.send('Record', i)
      if (i === 80) for (const ws of upgradesOf(app.signalr).clients()) ws.terminate()
    }
    await until(() => received.length >= 200)
    await sleep(50)
    t.same(received, range(200), 'every client message once, in order')

    t.equal(c.connectionId, id, 'the same connection')
    t.notOk(closed, 'the client never saw its connection close')
    t.equal(disconnects, 0, 'the hub never saw a disconnect')
  })
}

test('on the wire: Sequence then replay on reconnect; Acks from the server; 404 after disconnectTimeout', async (t) => {
  const { base } = await startServer(t, { plugin: { allowStatefulReconnects: true, disconnectTimeout: 300, keepAliveInterval: 10_000 } })
  const path = '/hubs/scenario'
  const neg = await (await fetch(`${base}${path}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })).json() as { connectionToken: string, useStatefulReconnect: boolean }
  t.equal(neg.useStatefulReconnect, true)
  const wsUrl = `${base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`
  const first = await rawConnect(t, wsUrl)
  first.send(`{"protocol":"json","version":2}${RS}`)
  t.equal(await first.next(), `{}${RS}`)
  first.send(`{"type":1,"invocationId":"1","target":"Echo","arguments":["a"]}${RS}`)
  t.equal(await first.next(), `{"type":3,"invocationId":"1","result":"a"}${RS}`)
  t.equal(await first.next(2000), `{"type":8,"sequenceId":1}${RS}`, 'the server acknowledges what it received')
  // Not acknowledged by us: the Completion (sequence id 1) must be replayed
  first.ws.terminate()
  await sleep(50)
  const second = await rawConnect(t, wsUrl)
  t.equal(await second.next(), `{"type":9,"sequenceId":1}${RS}`, 'Sequence first, with the first unacknowledged id')
  t.equal(await second.next(), `{"type":3,"invocationId":"1","result":"a"}${RS}`, 'then the replay')
  // Our Sequence says we resend message 1, which the server already processed: dropped
  second.send(`{"type":9,"sequenceId":1}${RS}{"type":1,"invocationId":"1","target":"Echo","arguments":["a"]}${RS}{"type":1,"invocationId":"2","target":"Echo","arguments":["b"]}${RS}`)
  t.equal(await second.next(), `{"type":3,"invocationId":"2","result":"b"}${RS}`, 'the duplicate is dropped, the new one runs')
  second.send(`{"type":8,"sequenceId":2}${RS}`)
  second.ws.terminate()
  await sleep(600)
  const late = await rawConnect(t, wsUrl).catch((err: Error) => err)
  t.match(String(late), /404/, 'after disconnectTimeout the connection is gone')
})

test('a Sequence beyond what was received closes the connection with an error', async (t) => {
  const { base } = await startServer(t, { plugin: { allowStatefulReconnects: true } })
  const path = '/hubs/scenario'
  const neg = await (await fetch(`${base}${path}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })).json() as { connectionToken: string }
  const c = await rawConnect(t, `${base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`)
  c.send(`{"protocol":"json","version":2}${RS}`)
  t.equal(await c.next(), `{}${RS}`)
  c.send(`{"type":9,"sequenceId":5}${RS}`)
  t.equal(await c.next(), `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}${RS}`)
})

test('version 1 handshakes and clients that did not ask get no stateful reconnect', async (t) => {
  const { base } = await startServer(t, { plugin: { allowStatefulReconnects: true, disconnectTimeout: 5000 } })
  const path = '/hubs/scenario'
  const neg = await (await fetch(`${base}${path}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })).json() as { connectionToken: string }
  const wsUrl = `${base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`
  const c = await rawConnect(t, wsUrl)
  c.send(`{"protocol":"json","version":1}${RS}`)
  t.equal(await c.next(), `{}${RS}`)
  c.ws.terminate()
  await sleep(50)
  const again = await rawConnect(t, wsUrl).catch((err: Error) => err)
  t.match(String(again), /404/, 'a cut socket ends a version-1 connection at once')
})

test('while a stateful-reconnect connection waits for its client, only a WebSocket may resume it: Long Polling and SSE get 400', async (t) => {
  let connects = 0
  const hub = defineHub({
    methods: { Echo: { args: [Type.String()], handler: (_ctx, s) => s } },
    onConnected () { connects++ }
  })
  const { base } = await startServer(t, { hub, path: '/hubs/resume', plugin: { allowStatefulReconnects: true, disconnectTimeout: 5000 } })
  const path = '/hubs/resume'
  const neg = await (await fetch(`${base}${path}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })).json() as { connectionToken: string }
  const wsUrl = `${base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`
  const first = await rawConnect(t, wsUrl)
  first.send(`{"protocol":"json","version":2}${RS}`)
  t.equal(await first.next(), `{}${RS}`)
  first.ws.terminate()
  await sleep(50)
  // The connection now waits up to disconnectTimeout for its client to come back
  const url = `${base}${path}?id=${neg.connectionToken}`
  const poll = await fetch(`${url}&_=1`)
  t.equal(poll.status, 400, 'a long poll may not take it over')
  t.equal(await poll.text(), 'Cannot change transports mid-connection')
  const sse = await fetch(url, { headers: { accept: 'text/event-stream' } })
  t.equal(sse.status, 400, 'nor an event stream')
  t.equal(await sse.text(), 'Cannot change transports mid-connection')
  const post = await fetch(url, { method: 'POST', body: `{"protocol":"json","version":1}${RS}` })
  t.equal(post.status, 405, 'nor a POST: it is a WebSocket connection')
  // The WebSocket still can, with no second handshake
  const second = await rawConnect(t, wsUrl)
  t.equal(await second.next(), `{"type":9,"sequenceId":1}${RS}`, 'resumed')
  second.send(`{"type":1,"invocationId":"1","target":"Echo","arguments":["back"]}${RS}`)
  t.equal(await second.next(), `{"type":3,"invocationId":"1","result":"back"}${RS}`)
  t.equal(connects, 1, 'onConnected ran once')
})
