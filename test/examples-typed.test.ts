// The README's "Types end to end" examples (examples/typed-*.ts), run with the official client.
import { test } from 'tap'
import { buildTypedApp } from '../examples/typed-chat.js'
import { runTypedClient } from '../examples/typed-client.js'

test('the typed examples work as written: every call kind, a client result, the served contract', async (t) => {
  const app = await buildTypedApp()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const result = await runTypedClient(`http://127.0.0.1:${port}/hubs/chat`)
  t.same(result, { echoed: 'hi', ticks: ['tick 0', 'tick 1', 'tick 2'], lines: 2, deleted: true, messages: ['ann: hello'] })
  const contract = await app.inject('/hubs/chat/asyncapi.json')
  t.equal(contract.statusCode, 200)
  t.equal(contract.json<{ info: { title: string } }>().info.title, 'Chat')
  await t.rejects(app.signalr.hub('/hubs/chat').clients.all.send('ReceiveMessage', 'only one argument'),
    { code: 'FST_SIGNALR_INVALID_CLIENT_ARGUMENT' }, 'validateClientArguments is on outside production')
})
