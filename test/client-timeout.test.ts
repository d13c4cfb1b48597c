// The client timeout is paused only while the client's messages cannot reach the hub (a call
// waits for the connection's only invocation slot, so the Pings behind it wait too), as
// ASP.NET Core pauses it while its receive loop waits on a dispatch. A flag set by every
// running invocation once let the first call to finish clear it for all, and an upload that
// never ended paused the timeout forever.
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'

const path = '/hubs/timeout'
const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], handler: (_ctx, s) => s },
    // Holds its slot until the connection ends
    Busy: { args: [], handler: async (ctx) => { await new Promise((resolve) => { ctx.signal.addEventListener('abort', resolve) }) } },
    // An upload the client never completes
    Hold: {
      args: [],
      uploads: [Type.String()],
      async handler (_ctx, items) {
        let n = 0
        for await (const _ of items) n++
        return n
      }
    }
  }
})

const TIMEOUT = 300
const CLOSE = `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}${RS}`

test('an upload that never ends does not pause the client timeout', async (t) => {
  const { base } = await startServer(t, { hub, path, plugin: { clientTimeoutInterval: TIMEOUT, keepAliveInterval: 60_000 } })
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":6}${RS}`)
  c.send(`{"type":1,"invocationId":"1","target":"Hold","arguments":[],"streamIds":["s"]}${RS}`)
  const started = Date.now()
  // Then silence: nothing blocks the client's Pings, so its silence counts
  t.equal(await c.next(TIMEOUT * 10), CLOSE, 'closed by the client timeout')
  t.ok(Date.now() - started >= TIMEOUT - 20, 'not before it')
})

test('a call waiting for the only slot pauses the timeout; it runs again once the call can start', async (t) => {
  const { base } = await startServer(t, { hub, path, plugin: { clientTimeoutInterval: TIMEOUT, keepAliveInterval: 60_000 } })
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":6}${RS}`)
  // Busy takes the slot; a fire-and-forget Busy behind it waits for it, holding back the rest
  c.send(`{"type":1,"invocationId":"1","target":"Busy","arguments":[]}${RS}`)
  c.send(`{"type":1,"target":"Busy","arguments":[]}${RS}`)
  const early = await c.next(TIMEOUT * 4).catch(() => 'nothing')
  t.equal(early, 'nothing', `still open after ${TIMEOUT * 4} ms of silence: its messages could not get through`)
})

test('two calls in parallel: the first to finish does not pause the timeout for the other', async (t) => {
  const { base } = await startServer(t, {
    hub,
    path,
    plugin: { clientTimeoutInterval: TIMEOUT, keepAliveInterval: 60_000, maximumParallelInvocationsPerClient: 2 }
  })
  const c = await rawJsonConnection(t, base, path)
  c.send(`{"type":6}${RS}`)
  c.send(`{"type":1,"invocationId":"1","target":"Busy","arguments":[]}${RS}{"type":1,"invocationId":"2","target":"Echo","arguments":["x"]}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"2","result":"x"}${RS}`)
  // Busy still runs, but nothing holds the client's messages back: silence counts
  t.equal(await c.next(TIMEOUT * 10), CLOSE, 'closed by the client timeout while a call still runs')
})
