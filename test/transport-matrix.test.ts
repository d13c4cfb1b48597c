// The scenario through the official Node client over every valid transport and protocol.
import { test } from 'tap'
import { connect, VALID_MATRIX } from './fixtures/client.js'
import { runScenario } from './fixtures/scenario.js'
import { startServer } from './fixtures/server.js'

const matrix = VALID_MATRIX

for (const [transport, protocol] of matrix) {
  test(`scenario over ${transport} / ${protocol}`, async (t) => {
    const { url } = await startServer(t)
    const userA = `ua-${transport}-${protocol}`
    const a = await connect(t, url, { transport, protocol, user: userA })
    const b = await connect(t, url, { transport, protocol, user: 'ub' })
    for (const c of await runScenario(a, b, userA)) t.ok(c.ok, `${c.name} ${c.detail ?? ''}`)
  })
}

test('SSE and LP connections and WebSockets ones talk to each other', async (t) => {
  const { url } = await startServer(t)
  const ws = await connect(t, url, { transport: 'WebSockets', user: 'mixed' })
  const lp = await connect(t, url, { transport: 'LongPolling', user: 'lp-user' })
  const sse = await connect(t, url, { transport: 'ServerSentEvents', user: 'sse-user' })
  for (const c of await runScenario(lp, ws, 'lp-user')) t.ok(c.ok, `lp+ws ${c.name} ${c.detail ?? ''}`)
  for (const c of await runScenario(sse, lp, 'sse-user')) t.ok(c.ok, `sse+lp ${c.name} ${c.detail ?? ''}`)
})
