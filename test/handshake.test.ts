// The handshake and the JSON hub protocol on the wire, with a bare WebSocket.
import { test } from 'tap'
import { negotiate, rawConnect, rawJsonConnection, RS } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'

const path = '/hubs/scenario'

async function open (t: Parameters<typeof startServer>[0], plugin = {}) {
  const server = await startServer(t, { plugin })
  const neg = await negotiate(server.base, path)
  const c = await rawConnect(t, `${server.base.replace('http', 'ws')}${path}?id=${neg.connectionToken}`)
  return { ...server, c, neg }
}

test('a good handshake is answered with exactly {} and RS; messages may follow in the same frame', async (t) => {
  const { c } = await open(t)
  c.send(`{"protocol":"json","version":1}${RS}{"arguments":["x"],"invocationId":"7","target":"Echo","type":1}${RS}`)
  t.equal(await c.next(), `{}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"7","result":"x"}${RS}`)
})

test('records are reassembled across frames', async (t) => {
  const { c } = await open(t)
  c.send('{"protocol":"js')
  c.send(`on","version":1}${RS}{"type":1,"invocationId":"1","tar`)
  t.equal(await c.next(), `{}${RS}`)
  c.send(`get":"Add","arguments":[20,22]}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"1","result":42}${RS}`)
})

test('unknown fields are ignored and field order does not matter', async (t) => {
  const { base } = await startServer(t)
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"extra":{"a":1},"type":1,"arguments":["q"],"target":"Echo","invocationId":"9","headers":{"h":"v"}}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"9","result":"q"}${RS}`)
})

test('an unknown protocol, an unsupported version and bad JSON get handshake errors, then the socket closes', async (t) => {
  const cases: Array<[string, string]> = [
    [`{"protocol":"xml","version":1}${RS}`, "The protocol 'xml' is not supported."],
    [`{"protocol":"json","version":3}${RS}`, "The server does not support version 3 of the 'json' protocol."],
    [`not json${RS}`, 'An unexpected error occurred during connection handshake.'],
    [`{"protocol":"json"}${RS}`, 'An unexpected error occurred during connection handshake.']
  ]
  for (const [send, error] of cases) {
    const { c } = await open(t)
    c.send(send)
    t.equal(await c.next(), JSON.stringify({ error }) + RS, error)
    const closed = await c.closed
    t.equal(closed.code, 1000)
  }
})

test('a handshake that does not arrive in time is canceled', async (t) => {
  const { c } = await open(t, { handshakeTimeout: 100 })
  t.equal(await c.next(), `{"error":"Handshake was canceled."}${RS}`)
  await c.closed
  t.pass('closed')
})

test('invalid JSON after the handshake closes the connection with an error Close that allows reconnect; others are unaffected', async (t) => {
  const { base } = await startServer(t)
  const bad = await rawJsonConnection(t, base, path)
  const good = await rawJsonConnection(t, base, path)
  bad.send(`{"type":1,${RS}`)
  t.equal(await bad.next(), `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}${RS}`)
  await bad.closed
  good.send(`{"type":1,"invocationId":"1","target":"Echo","arguments":["ok"]}${RS}`)
  t.equal(await good.next(), `{"type":3,"invocationId":"1","result":"ok"}${RS}`)
})

test('a field of the wrong type closes the connection with an error Close', async (t) => {
  const { base } = await startServer(t)
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":1,"target":5,"arguments":[]}${RS}`)
  t.equal(await c.next(), `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}${RS}`)
})

test('unknown message types are ignored', async (t) => {
  const { base } = await startServer(t)
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":99,"whatever":true}${RS}{"type":1,"invocationId":"2","target":"Echo","arguments":["after"]}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"2","result":"after"}${RS}`)
})

test('a streaming invocation with no invocationId and a completion for an unknown id are harmless', async (t) => {
  const { base } = await startServer(t)
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":3,"invocationId":"nope","result":1}${RS}{"type":2,"invocationId":"nope","item":1}${RS}{"type":5,"invocationId":"nope"}${RS}`)
  c.send(`{"type":1,"invocationId":"3","target":"Echo","arguments":["fine"]}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"3","result":"fine"}${RS}`)
})

test('the server pings every keepAliveInterval', async (t) => {
  const { base } = await startServer(t, { plugin: { keepAliveInterval: 50 } })
  const c = await rawJsonConnection(t, base, path)
  t.equal(await c.next(1000), `{"type":6}${RS}`)
  t.equal(await c.next(1000), `{"type":6}${RS}`)
})

test('a client silent for clientTimeoutInterval after its first ping is closed with an error that allows reconnect', async (t) => {
  const { base } = await startServer(t, { plugin: { clientTimeoutInterval: 150, keepAliveInterval: 10_000 } })
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":6}${RS}`)
  const started = Date.now()
  t.equal(await c.next(2000), `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}${RS}`)
  t.ok(Date.now() - started >= 140, 'not before the timeout')
  await c.closed
})

test('no client timeout before the first ping (the .NET rule)', async (t) => {
  const { base } = await startServer(t, { plugin: { clientTimeoutInterval: 100, keepAliveInterval: 10_000 } })
  const c = await rawJsonConnection(t, base, path)
  await new Promise((resolve) => setTimeout(resolve, 300))
  c.send(`{"type":1,"invocationId":"1","target":"Echo","arguments":["alive"]}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"1","result":"alive"}${RS}`)
})

test('the client Close gets a plain Close back', async (t) => {
  const { base } = await startServer(t)
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":7}${RS}`)
  t.equal(await c.next(), `{"type":7}${RS}`)
  await c.closed
})

test('an unknown id gets 404 and a second socket on one connection gets 409, before the upgrade', async (t) => {
  const { base } = await startServer(t)
  const wsBase = base.replace('http', 'ws') + path
  const unknown = await rawConnect(t, `${wsBase}?id=doesnotexist`).catch((err: Error) => err)
  t.match(String(unknown), /404/)
  const neg = await negotiate(base, path)
  await rawConnect(t, `${wsBase}?id=${neg.connectionToken}`)
  const second = await rawConnect(t, `${wsBase}?id=${neg.connectionToken}`).catch((err: Error) => err)
  t.match(String(second), /409/)
  const byId = await rawConnect(t, `${wsBase}?id=${neg.connectionId}`).catch((err: Error) => err)
  t.match(String(byId), /404/, 'the public connectionId does not authorize the transport')
})
