// What the official clients' own functional suites (dotnet/aspnetcore:
// src/SignalR/clients/ts/FunctionalTests, src/SignalR/clients/csharp/Client/test/FunctionalTests)
// expect of a server, through the official JS client on every transport and protocol.
import { test } from 'tap'
import { defineHub } from '../index.js'
import { buildClient, connect, signalR, VALID_MATRIX } from './fixtures/client.js'
import { functionalHub as hub, redirectServer } from './fixtures/functional-hubs.js'
import { startServer } from './fixtures/server.js'

function collect (stream: signalR.IStreamResult<unknown>): Promise<{ items: unknown[], error: Error | undefined }> {
  const items: unknown[] = []
  return new Promise((resolve) => {
    stream.subscribe({
      next: (item) => { items.push(item) },
      complete: () => { resolve({ items, error: undefined }) },
      error: (error) => { resolve({ items, error }) }
    })
  })
}

const BINDING = 'InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.'

for (const detailed of [false, true]) {
  test(`a streaming method that fails before returning a stream answers as a failed invoke (detailed errors ${detailed ? 'on' : 'off'})`, async (t) => {
    const { url } = await startServer(t, { hub, plugin: { enableDetailedErrors: detailed } })
    for (const [transport, protocol] of VALID_MATRIX) {
      const c = await connect(t, url, { transport, protocol })
      for (const method of ['StreamThrowException', 'StreamReject']) {
        const { error } = await collect(c.stream(method, 'An error occurred.'))
        t.equal(error?.message, `An unexpected error occurred invoking '${method}' on the server.${detailed ? ' Error: An error occurred.' : ''}`, `${transport}/${protocol}: ${method}`)
      }
      const later = await collect(c.stream('StreamFailsLater'))
      t.same(later.items, [1])
      t.equal(later.error?.message, `An error occurred on the server while streaming results.${detailed ? ' Error: late' : ''}`, `${transport}/${protocol}: a failure while enumerating`)
      await c.stop()
    }
  })
}

test('the argument count is checked before the invocation kind, as ASP.NET Core binds first', async (t) => {
  const { url } = await startServer(t, { hub })
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, url, { transport, protocol })
    // A StreamInvocation of a non-streaming method with the wrong count: the count error
    const wrongCount = await collect(c.stream('Echo', 'a', 'b'))
    t.equal(wrongCount.error?.message, "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Invocation provides 2 argument(s) but target expects 1.", `${transport}/${protocol}`)
    await t.rejects(c.invoke('Counter'), { message: "Failed to invoke 'Counter' due to an error on the server. InvalidDataException: Invocation provides 0 argument(s) but target expects 1." })
    // The right count: then the kind is checked
    t.equal((await collect(c.stream('Echo', 'a'))).error?.message, "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.")
    await t.rejects(c.invoke('Counter', 1), { message: "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation." })
    await c.stop()
  }
})

test('binding errors lead with the text .NET clients match, then say which argument and why', async (t) => {
  const { url } = await startServer(t, { hub })
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, url, { transport, protocol })
    await t.rejects(c.invoke('Add', 1, 'x'), { message: `Failed to invoke 'Add' due to an error on the server. ${BINDING} Argument 1 is invalid: must be integer.` }, `${transport}/${protocol}: invoke`)
    const stream = await collect(c.stream('Counter', 'x'))
    t.equal(stream.error?.message, `Failed to invoke 'Counter' due to an error on the server. ${BINDING} Argument 0 is invalid: must be integer.`, `${transport}/${protocol}: stream invocation`)
    await c.stop()
  }
})

test('ctx.transport and ctx.protocol say what the connection uses', async (t) => {
  let seen: unknown
  const watched = defineHub({
    methods: { ...hub.methods, Seen: { args: [], handler: (ctx) => ctx.items.get('seen') } },
    onConnected: hub.onConnected,
    onDisconnected (ctx) { seen = `${ctx.transport}/${ctx.protocol}` }
  })
  const { url } = await startServer(t, { hub: watched })
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, url, { transport, protocol })
    t.equal(await c.invoke('Where'), `${transport}/${protocol}`)
    t.equal(await c.invoke('Seen'), `${transport}/${protocol}`, 'in onConnected too')
    await c.stop()
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(seen, `${transport}/${protocol}`, 'and in onDisconnected')
  }
})

test('a send whose arguments cannot be serialised rejects, and a result that cannot be is an error Completion, on every transport', async (t) => {
  const { url } = await startServer(t, { hub, plugin: { enableDetailedErrors: true } })
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, url, { transport, protocol })
    const got: unknown[] = []
    c.on('Got', (x: unknown) => { got.push(x) })
    await t.rejects(c.invoke('SendCycle'), { message: new RegExp(`^An unexpected error occurred invoking 'SendCycle' on the server\\. FST_SIGNALR_UNSERIALIZABLE: A message could not be serialised for the '${protocol}' protocol: `) }, `${transport}/${protocol}: send`)
    await t.rejects(c.invoke('ResultCycle'), { message: 'The server could not serialize the result.' }, `${transport}/${protocol}: result`)
    t.equal(await c.invoke('Alive'), 'alive', 'the connection lives on')
    t.same(got, [], 'nothing half-sent')
    await c.stop()
  }
})

test('hub paths match without regard to case on negotiate, every transport and the upgrade; other routes keep theirs', async (t) => {
  const { app, base } = await startServer(t, {
    hub,
    path: '/authorizedhub',
    setup (a) { a.get('/other', async () => 'other') }
  })
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, `${base}/authorizedHub`, { transport, protocol })
    t.equal(await c.invoke('Where'), `${transport}/${protocol}`, `${transport}/${protocol} at /authorizedHub`)
    await c.stop()
  }
  const direct = await connect(t, `${base}/AUTHORIZEDHUB`, { transport: 'WebSockets', skipNegotiation: true })
  t.equal(await direct.invoke('Alive'), 'alive', 'a WebSocket opened without negotiate')
  await direct.stop()
  t.equal((await fetch(`${base}/other`)).status, 200)
  t.equal((await fetch(`${base}/OTHER`)).status, 404, "the application's own routes stay case-sensitive")
  t.equal((await fetch(`${base}/AuthorizedHub/negotiate?negotiateVersion=1`, { method: 'POST' })).status, 200)
  t.ok(app.signalr.paths.includes('/authorizedhub'))
})

test('negotiate redirects: the official JS client follows { url, accessToken } and sends the new token', async (t) => {
  const { base, issued, refused } = await redirectServer(t)
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, `${base}/redirect`, { transport, protocol })
    t.equal(await c.invoke('Whoami'), `user-of-${issued[issued.length - 1]}`, `${transport}/${protocol}: on the redirected hub with the new token`)
    t.equal(await c.invoke('Where'), `${transport}/${protocol}`)
    await c.stop()
  }
  t.equal(issued.length, VALID_MATRIX.length, 'one redirect per connection')
  t.equal(refused(), 0, 'no request reached the guarded hub without the token')
  const res = await fetch(`${base}/redirect/negotiate?negotiateVersion=1`, { method: 'POST' })
  t.same(await res.json(), { url: `${base}/authorizedHub`, accessToken: issued[issued.length - 1] }, 'the spec\'s redirect body')
  t.equal((await fetch(`${base}/authorizedhub/negotiate?negotiateVersion=1`, { method: 'POST' })).status, 401, 'the guard is real')
})

test('a negotiate redirect no client could follow is a 500 and a log line, not a broken answer', async (t) => {
  const { base } = await startServer(t, { hub, route: { negotiateRedirect: () => ({ url: '/relative' }) } })
  t.equal((await fetch(`${base}/hubs/scenario/negotiate?negotiateVersion=1`, { method: 'POST' })).status, 500)
  const { base: base2 } = await startServer(t, { hub, route: { negotiateRedirect: () => undefined } })
  const body = await (await fetch(`${base2}/hubs/scenario/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { connectionToken?: string }
  t.type(body.connectionToken, 'string', 'undefined negotiates here')
})

test('a hub requiring a newer negotiate version refuses the official client with the spec error (ServerRejectsClientWithOldProtocol)', async (t) => {
  const { url } = await startServer(t, { hub, path: '/negotiateProtocolVersion12', route: { minimumNegotiateVersion: 12 } })
  for (const transport of ['LongPolling', 'WebSockets'] as const) {
    const client = buildClient(url, { transport })
    const err = await client.start().then(() => undefined, (e: Error) => e)
    t.match(err?.message, /The client requested version '1', but the server does not support this version\./, transport)
  }
})

test('Bytes() and DateTime(): both wire forms in, one type to the handler; Uint8Array out as base64 (JSON) or bin (MessagePack)', async (t) => {
  const { url } = await startServer(t, { hub })
  for (const [transport, protocol] of VALID_MATRIX) {
    const c = await connect(t, url, { transport, protocol })
    const json = protocol === 'json'
    // What a .NET client sends: base64 and ISO 8601 in JSON, bin and a timestamp in MessagePack
    const bytes = json ? Buffer.from([1, 2, 255]).toString('base64') : new Uint8Array([1, 2, 255])
    const when = json ? '2026-12-02T03:04:05.6789012Z' : new Date(Date.UTC(2026, 11, 2, 3, 4, 5, 678))
    t.same(await c.invoke('Describe', bytes, when), { isBytes: true, hex: '0102ff', isDate: true, iso: '2026-12-02T03:04:05.678Z' }, `${transport}/${protocol}`)
    const given = await c.invoke('Give')
    if (json) t.equal(given, Buffer.from([0, 1, 2, 254, 255]).toString('base64'))
    else t.same(Buffer.from(given as Uint8Array), Buffer.from([0, 1, 2, 254, 255]))
    const view = await c.invoke('GiveView')
    t.same(json ? view : Buffer.from(view as Uint8Array).toString('base64'), Buffer.from([8, 7]).toString('base64'), 'a view goes as its own bytes only')
    const date = await c.invoke('When')
    if (json) t.equal(date, '2026-12-02T03:04:05.678Z')
    else t.same(date, new Date(Date.UTC(2026, 11, 2, 3, 4, 5, 678)))
    const nested = await c.invoke('Nested') as { list: Array<{ data: unknown }> }
    t.same(json ? nested.list[0].data : Buffer.from(nested.list[0].data as Uint8Array).toString('base64'), Buffer.from('hi').toString('base64'), 'nested too')
    await t.rejects(c.invoke('Describe', json ? 'not base64!' : 'x', when), { message: /Argument 0 is invalid: must be bytes \(base64 in JSON, bin in MessagePack\)\.$/ })
    await t.rejects(c.invoke('Describe', json ? Buffer.alloc(9).toString('base64') : new Uint8Array(9), when), { message: /Argument 0 is invalid: must not have more than 8 bytes\.$/ })
    await t.rejects(c.invoke('Describe', bytes, 'yesterday'), { message: /Argument 1 is invalid: must be a date/ })
    await c.stop()
  }
})
