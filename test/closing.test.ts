// Ending connections from the server: close with an error and allowReconnect, abort(), and
// the reason onDisconnected receives.
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { connect, signalR, type ProtocolName } from './fixtures/client.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'

const reasons: Array<Error | undefined> = []
const hub = defineHub({
  methods: {
    CloseMe: {
      args: [Type.String(), Type.Boolean()],
      handler: (ctx, error, allowReconnect) => { ctx.close({ error, allowReconnect }) }
    },
    Abort: { args: [], handler: (ctx) => { ctx.abort() } },
    Echo: { args: [Type.String()], handler: (_ctx, s) => s }
  },
  onDisconnected (_ctx, error) { reasons.push(error) }
})

for (const protocol of ['json', 'messagepack'] as ProtocolName[]) {
  test(`${protocol}: close with an error and allowReconnect: the official client reconnects`, async (t) => {
    const { url } = await startServer(t, { hub })
    const c = await connect(t, url, { reconnect: true, protocol })
    const firstId = c.connectionId
    const reconnecting = new Promise<Error | undefined>((resolve) => { c.onreconnecting(resolve) })
    const reconnected = new Promise<string | undefined>((resolve) => { c.onreconnected(resolve) })
    await c.send('CloseMe', 'maintenance', true)
    t.equal((await reconnecting)?.message, 'Server returned an error on close: Connection closed with an error. HubException: maintenance')
    const newId = await reconnected
    t.not(newId, firstId, 'a fresh connection')
    t.equal(await c.invoke('Echo', 'back'), 'back')
  })

  test(`${protocol}: close without allowReconnect: the client stops for good, with the error`, async (t) => {
    const { url } = await startServer(t, { hub })
    const c = await connect(t, url, { reconnect: true, protocol })
    let reconnectingCalled = false
    c.onreconnecting(() => { reconnectingCalled = true })
    const closed = new Promise<Error | undefined>((resolve) => { c.onclose(resolve) })
    await c.send('CloseMe', 'banned', false)
    t.equal((await closed)?.message, 'Server returned an error on close: Connection closed with an error. HubException: banned')
    t.notOk(reconnectingCalled)
    t.equal(c.state, signalR.HubConnectionState.Disconnected)
  })
}

test('app.signalr.hub(path).close(id) from outside the hub', async (t) => {
  const { app, url } = await startServer(t, { hub })
  const c = await connect(t, url)
  const closed = new Promise<Error | undefined>((resolve) => { c.onclose(resolve) })
  await app.signalr.hub('/hubs/scenario').close(c.connectionId as string)
  t.equal(await closed, undefined, 'a Close without error')
  await app.signalr.hub('/hubs/scenario').close('unknown-id')
  t.pass('an unknown id is a no-op')
})

test('onDisconnected receives the reason: undefined for a clean stop, the error otherwise', async (t) => {
  reasons.length = 0
  const { base, url } = await startServer(t, { hub, plugin: { clientTimeoutInterval: 100, keepAliveInterval: 10_000 } })
  const c = await connect(t, url)
  await c.stop()
  const raw = await rawJsonConnection(t, base, '/hubs/scenario')
  raw.send(`{"type":6}${RS}`)
  await raw.closed
  const c2 = await connect(t, url)
  await c2.send('CloseMe', 'why', false)
  const end = Date.now() + 3000
  while (reasons.length < 3 && Date.now() < end) await sleep(10)
  t.equal(reasons[0], undefined, 'clean stop')
  t.match(reasons[1], { code: 'FST_SIGNALR_CLIENT_TIMEOUT' }, 'client timeout')
  t.match(reasons[2], { message: 'why' }, 'the server closed it with an error')
})
