// The demo's chat hub, driven by the official client the way the demo page drives it.
import { test } from 'tap'
import { chatHub } from '../demo/chat-hub.js'
import { connect, nextCall } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'

test('the demo hub: invoke, broadcast, rooms, and a clear answer to invalid arguments', async (t) => {
  const { url } = await startServer(t, { hub: chatHub, path: '/hubs/chat' })
  const a = await connect(t, url)
  const b = await connect(t, url)
  t.equal(await a.invoke('Echo', 'ping'), 'ping')
  t.equal(await a.invoke('Online'), 2)

  const got = nextCall(b, 'ReceiveMessage')
  await a.invoke('Send', 'ann', 'hello all')
  t.same(await got, ['ann', 'hello all'])

  t.same(await a.invoke('JoinRoom', 'lobby'), [a.connectionId])
  const members = await b.invoke('JoinRoom', 'lobby') as string[]
  t.same(members.sort(), [a.connectionId, b.connectionId].sort())
  const room = nextCall(a, 'RoomMessage')
  await b.invoke('SendToRoom', 'lobby', 'bo', 'in the room')
  t.same(await room, ['lobby', 'bo', 'in the room'])

  await t.rejects(a.invoke('Send', 'ann', 'x'.repeat(201)), {
    message: "Failed to invoke 'Send' due to an error on the server. HubException: Argument 1 is invalid: must not have more than 200 characters."
  })
})
