// Client results: the server invokes a client method and awaits its value.
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { connect, type ProtocolName } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'

for (const protocol of ['json', 'messagepack'] as ProtocolName[]) {
  test(`${protocol}: caller.invoke inside a hub method with maximumParallelInvocationsPerClient 1 does not deadlock`, async (t) => {
    const { url } = await startServer(t)
    const c = await connect(t, url, { protocol })
    c.on('Ask', (question: string) => `yes:${question}`)
    t.equal(await c.invoke('AskClient', 'q1'), 'client said: yes:q1')
    c.off('Ask')
    c.on('Ask', async (question: string) => await new Promise((resolve) => setTimeout(() => { resolve(`later:${question}`) }, 20)))
    t.equal(await c.invoke('AskClient', 'q2'), 'client said: later:q2', 'a handler returning a Promise answers too')
  })

  test(`${protocol}: client(id).invoke from outside a hub resolves with the value`, async (t) => {
    const { app, url } = await startServer(t)
    const c = await connect(t, url, { protocol })
    c.on('Add', (a: number, b: number) => a + b)
    const hub = app.signalr.hub('/hubs/scenario')
    t.equal(await hub.clients.client(c.connectionId as string).invoke<number>('Add', 2, 3), 5)
  })
}

test('a client error, a missing handler, a disconnect, a timeout and an unknown connection reject clearly', async (t) => {
  const { app, url } = await startServer(t, { plugin: { clientResultTimeout: 200 } })
  const hub = app.signalr.hub('/hubs/scenario')
  const c = await connect(t, url)
  c.on('Throws', () => { throw new Error('client side failure') })
  await t.rejects(hub.clients.client(c.connectionId as string).invoke('Throws'), { code: 'FST_SIGNALR_CLIENT_RESULT', message: /client side failure/ })
  await t.rejects(hub.clients.client(c.connectionId as string).invoke('NoHandler'), { message: "Client didn't provide a result." })
  c.on('Never', async () => await new Promise(() => {}))
  await t.rejects(hub.clients.client(c.connectionId as string).invoke('Never'), { code: 'FST_SIGNALR_CLIENT_RESULT_TIMEOUT' })
  await t.rejects(hub.clients.client('nobody').invoke('Anything'), { message: "Connection 'nobody' does not exist." })
  const pending = hub.clients.client(c.connectionId as string).invoke('Never')
  const id = c.connectionId as string
  setTimeout(() => { void c.stop() }, 20)
  await t.rejects(pending, { message: `Connection '${id}' disconnected.` })
})

test('client results are refused inside onConnected, as in ASP.NET Core', async (t) => {
  let refused: unknown
  const hub = defineHub({
    methods: { Ping: { args: [Type.String()], handler: (_ctx, s) => s } },
    async onConnected (ctx) {
      try { await ctx.clients.caller.invoke('Ask') } catch (err) { refused = err }
    }
  })
  const { url } = await startServer(t, { hub })
  const c = await connect(t, url)
  t.equal(await c.invoke('Ping', 'p'), 'p')
  t.match(refused, { message: 'Client results inside OnConnectedAsync Hub methods are not allowed.' })
})
