// What an idle WebSocket connection keeps, counted in objects (bench/heap.ts weighs them):
// the socket lets go of the unused HTTP response once upgraded, its three listeners are
// shared by every socket (no closures or once() wrappers per connection), and the parts a
// connection makes on first use (items, client results, signal, logger, waiters) are absent
// until used. ctx.request, which is why the upgrade request is kept, still works.
import type { Socket } from 'node:net'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { registryOf } from '../lib/registry.js'
import { connect } from './fixtures/client.js'
import { openRawJson, serverSocketOf } from './fixtures/raw-json.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

const path = '/hubs/footprint'
const hub = defineHub({
  methods: {
    Probe: { args: [], returns: Type.String(), handler: (ctx) => `${ctx.request.headers['x-probe'] as string} ${ctx.request.method} ${ctx.request.url.split('?')[0]}` }
  }
})

test('an idle WebSocket connection keeps no HTTP response and makes nothing it has not used', async (t) => {
  // With a real (pino) logger: a child logger per connection is what must not be made
  const { app, base } = await startServer(t, { path, hub, logger: true, plugin: { keepAliveInterval: 100 } })
  const client = await openRawJson(base, path)
  t.teardown(() => { client.ws.terminate() })
  let pings = 0
  client.ws.on('message', (data: Buffer) => { if (data.toString().includes('"type":6')) pings++ })
  await until(() => pings >= 2)

  const ws = serverSocketOf(app, client.ws)
  const socket = (ws as unknown as { _socket: Socket & { _httpMessage: unknown } })._socket
  t.equal(socket._httpMessage, null, 'the upgraded socket holds no ServerResponse')
  t.notOk(socket.listeners('close').some((l) => l.name === 'onServerResponseClose'), 'nor the response\'s close listener')
  // ws's own tracking listens for 'close' too; ours are one each, none wrapped by once()
  t.equal(ws.listenerCount('error'), 1, 'one error listener')
  t.equal(ws.listenerCount('message'), 1, 'one message listener')
  t.notOk(ws.rawListeners('close').some((l) => 'listener' in l), 'no once() wrapper on close')
  // and they are the same functions for every socket, not closures made per connection
  const other = await openRawJson(base, path)
  t.teardown(() => { other.ws.terminate() })
  const ws2 = serverSocketOf(app, other.ws)
  t.equal(ws2.listeners('message')[0], ws.listeners('message')[0], 'one message listener shared by all sockets')
  t.equal(ws2.listeners('error')[0], ws.listeners('error')[0], 'one error listener shared by all sockets')
  t.ok(ws2.listeners('close').some((l) => ws.listeners('close').includes(l)), 'one close listener shared by all sockets')

  const connection = registryOf(app.signalr).connection(client.token)
  t.ok(connection, 'the connection is registered')
  const fields = connection as unknown as Record<string, unknown>
  for (const lazy of ['itemsMap', 'pendingResultsMap', 'abortController', 'logger', 'limiter', 'drainWaiters', 'readableWaiters', 'conflated', 'reconnect', 'drainTimer']) {
    t.equal(fields[lazy], undefined, `${lazy}: not made while unused`)
  }
})

test('ctx.request is the upgrade request, still whole after the upgrade', async (t) => {
  const { url } = await startServer(t, { path, hub })
  const connection = await connect(t, url, { transport: 'WebSockets', headers: { 'x-probe': 'kept' } })
  t.equal(await connection.invoke('Probe'), `kept GET ${path}`, 'headers, method and url of the request that opened the WebSocket')
})
