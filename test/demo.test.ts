// The demo's chat hub, driven by the official client the way the demo page drives it: names,
// rooms, the who-is-online list, and a clear answer to invalid arguments.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { buildDemo } from '../demo/app.js'
import { NO_COVERAGE } from './fixtures/child.js'
import { connect, nextCall } from './fixtures/client.js'
import { freePort } from './fixtures/listen.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { until } from './fixtures/until.js'

test('the demo hub: names, rooms, who is online, and a clear answer to invalid arguments', async (t) => {
  const app = await buildDemo({ forceCloseConnections: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/hubs/chat`
  const ann = await connect(t, `${url}?name=Ann`)
  const bo = await connect(t, `${url}?name=Bo`)
  const annTab2 = await connect(t, `${url}?name=Ann`)

  t.same(await ann.invoke('Join', 'lobby'), { room: 'lobby', online: [{ name: 'Ann', connections: 1 }] })
  const seen = nextCall(ann, 'Online')
  t.same(await bo.invoke('Join', 'lobby'), { room: 'lobby', online: [{ name: 'Ann', connections: 1 }, { name: 'Bo', connections: 1 }] })
  t.same(await seen, ['lobby', [{ name: 'Ann', connections: 1 }, { name: 'Bo', connections: 1 }]], 'the room hears who is there now')
  await annTab2.invoke('Join', 'lobby')
  t.same(await bo.invoke('Online', 'lobby'), [{ name: 'Ann', connections: 2 }, { name: 'Bo', connections: 1 }], "one line per name, with that name's tabs")

  const got = nextCall(bo, 'Message')
  t.equal(await ann.invoke('Send', 'hello'), true)
  t.same(await got, ['lobby', 'Ann', 'hello'], 'messages carry the name, not a connection id')

  // Moving rooms: out of the old one, into the new one
  const left = nextCall(ann, 'Notice')
  t.same(await bo.invoke('Join', 'garden'), { room: 'garden', online: [{ name: 'Bo', connections: 1 }] })
  t.same(await left, ['lobby', 'Bo left'])
  const inGarden = nextCall(bo, 'Message')
  await annTab2.invoke('Join', 'garden')
  await annTab2.invoke('Send', 'in the garden')
  t.same(await inGarden, ['garden', 'Ann', 'in the garden'])

  const gone = nextCall(bo, 'Online')
  await annTab2.stop()
  t.same(await gone, ['garden', [{ name: 'Bo', connections: 1 }]], 'a closed tab leaves its room, and the room hears it')
  t.same(await bo.invoke('Online', 'lobby'), [{ name: 'Ann', connections: 1 }])

  await t.rejects(ann.invoke('Send', 'x'.repeat(501)), {
    message: "Failed to invoke 'Send' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked. Argument 0 is invalid: must not have more than 500 characters."
  })
  await t.rejects(ann.invoke('Join', 'no/slashes'), { message: /Argument 0 is invalid/ })
})

test('the demo serves the standard SignalR metrics for Prometheus at GET /metrics', async (t) => {
  const app = await buildDemo({ forceCloseConnections: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const scrape = async (): Promise<string> => await (await fetch(`${base}/metrics`)).text()
  const ann = await connect(t, `${base}/hubs/chat?name=Ann`, { transport: 'WebSockets' })
  await connect(t, `${base}/hubs/chat?name=Bo`, { transport: 'WebSockets' })
  await ann.invoke('Join', 'lobby')
  const text = await scrape()
  t.match(text, /^signalr_server_active_connections\{signalr_transport="web_sockets",otel_scope_name="fastify-signalr"\} 2$/m, 'two chat tabs are two active connections')
  t.match(text, /^signalr_server_invocations_total\{signalr_hub="\/hubs\/chat",signalr_method="Join",signalr_invocation_outcome="ok",otel_scope_name="fastify-signalr"\} 1$/m)
  await ann.stop()
  await until(async () => /^signalr_server_connection_duration_count\{signalr_connection_status="normal_closure",signalr_transport="web_sockets",otel_scope_name="fastify-signalr"\} 1$/m.test(await scrape()))
  t.match(await scrape(), /^signalr_server_active_connections\{signalr_transport="web_sockets",otel_scope_name="fastify-signalr"\} 1$/m, 'one left')
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`npm run demo: ${signal} shuts down through app.close(), every client gets its Close`, async (t) => {
    const port = await freePort()
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', ...NO_COVERAGE },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<[number | null, string | null]>((resolve) => { child.on('close', (code, sig) => { resolve([code, sig]) }) })
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    await until(() => {
      if (child.exitCode !== null) throw new Error(`the demo exited: ${out}`)
      return out.includes('fastify-signalr demo: open')
    }, 60_000).catch((err: Error) => { throw new Error(`${err.message}; the demo printed: ${out}`) })
    const base = `http://127.0.0.1:${port}`
    t.match(out, `open http://127.0.0.1:${port}/`, 'it says where to go')
    const raw = await rawJsonConnection(t, base, '/hubs/chat')
    const official = await connect(t, `${base}/hubs/chat?name=Bo`)
    const closed = new Promise<Error | undefined>((resolve) => { official.onclose(resolve) })

    child.kill(signal)
    t.equal(await raw.next(5000), `{"type":7,"allowReconnect":true}${RS}`, 'a Close that allows reconnect')
    t.equal((await raw.closed).code, 1000, 'then a normal close')
    t.equal(await closed, undefined, 'the official client closed without an error')
    t.same(await exited, [0, null], 'the process exits 0 by itself')
  })
}
