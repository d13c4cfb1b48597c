// The connection log lines: one info line at open and one at close, through the connection's
// child logger; the hub's logLevel turns them down or off; the connection token never
// reaches a request log line.
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { test } from 'tap'
import signalr, { type HubRouteOptions } from '../index.js'
import { connect } from './fixtures/client.js'
import { RS, rawJsonConnection } from './fixtures/raw-client.js'
import { scenarioHub } from './fixtures/scenario-hub.js'
import { until } from './fixtures/until.js'

type Line = Record<string, unknown>
type LogLevel = NonNullable<HubRouteOptions['logLevel']>
interface Teardown { teardown (fn: () => unknown): void }

async function server (t: Teardown, logLevel?: LogLevel): Promise<{ url: string, lines: Line[], close: () => Promise<void> }> {
  const lines: Line[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as Line)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream }, forceCloseConnections: true })
  await app.register(signalr)
  app.hub('/hubs/logs', scenarioHub, { userId: (r) => (r.query as Record<string, string>).user, ...(logLevel === undefined ? {} : { logLevel }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { url: `http://127.0.0.1:${port}/hubs/logs`, lines, close: async () => { await app.close() } }
}

for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const) {
  test(`one line at open and one at close over ${transport}`, async (t) => {
    const s = await server(t)
    const client = await connect(t, s.url, { transport, user: 'alice' })
    const id = client.connectionId as string
    await client.invoke('Echo', 'x')
    await client.stop()
    await until(() => s.lines.some((l) => l.msg === 'signalr: connection closed'))
    const opened = s.lines.filter((l) => l.msg === 'signalr: connection opened')
    const closed = s.lines.filter((l) => l.msg === 'signalr: connection closed')
    t.equal(opened.length, 1)
    t.equal(closed.length, 1)
    t.match(opened[0], { level: 30, signalrConnectionId: id, transport, protocol: 'json', user: 'alice' })
    t.match(closed[0], { level: 30, signalrConnectionId: id, transport, protocol: 'json', user: 'alice', status: 'normal_closure' })
    t.type(closed[0].durationMs, 'number')
    t.ok((closed[0].durationMs as number) >= 0)
    // The connection token authorizes every transport request: no log line may carry it
    const tokens = s.lines.flatMap((l) => {
      const url = (l.req as { url?: string } | undefined)?.url
      return url === undefined ? [] : [url]
    }).filter((u) => u.includes('id='))
    t.ok(tokens.length > 0, 'transport requests were logged')
    for (const u of tokens) t.match(u, /[?&]id=\[redacted\]/, `redacted: ${u}`)
    await s.close()
  })
}

test('the close line names the reason of an abnormal close', async (t) => {
  const s = await server(t)
  const url = new URL(s.url)
  const raw = await rawJsonConnection(t, url.origin, url.pathname)
  raw.send(`not json${RS}`)
  await until(() => s.lines.some((l) => l.msg === 'signalr: connection closed'))
  const closed = s.lines.find((l) => l.msg === 'signalr: connection closed') as Line
  t.type(closed.reason, 'string')
  t.match(closed.reason, /^FST_SIGNALR_INVALID_MESSAGE: /, `reason: ${String(closed.reason)}`)
})

for (const level of ['warn', 'silent'] as const) {
  test(`the hub's logLevel '${level}' turns the lines off`, async (t) => {
    const s = await server(t, level)
    const client = await connect(t, s.url, { transport: 'WebSockets' })
    await client.invoke('Echo', 'x')
    await client.stop()
    // The close line would follow the stop in the same turn as the connection ends
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.equal(s.lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('signalr: connection')).length, 0)
  })
}
