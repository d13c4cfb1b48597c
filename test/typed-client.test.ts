// fastify-signalr/client with the official Node client over every transport and protocol,
// the run-time half of the `client` schemas (client results checked against `returns`, and
// outgoing arguments when validateClientArguments is on), and the package's subpath export.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Subject } from '@microsoft/signalr'
import { build } from 'esbuild'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { typedHub } from '../lib/client/index.js'
import { connect, record, VALID_MATRIX } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'
import { typedChat } from './fixtures/typed-hub.js'
import { runTypedScenario } from './fixtures/typed-scenario.js'
import { until } from './fixtures/until.js'

const makeSubject = <T>(): Subject<T> => new Subject<T>()

for (const [transport, protocol] of VALID_MATRIX) {
  test(`the typed client over ${transport} / ${protocol}`, async (t) => {
    const { url } = await startServer(t, { hub: typedChat, path: '/hubs/typed' })
    const a = await connect(t, url, { transport, protocol })
    const b = await connect(t, url, { transport, protocol })
    for (const c of await runTypedScenario(a, b, makeSubject)) t.ok(c.ok, `${c.name} ${c.detail ?? ''}`)
  })
}

test('the wrapper calls through by name and is not mistaken for a promise', async (t) => {
  const { url } = await startServer(t, { hub: typedChat, path: '/hubs/typed' })
  const c = await connect(t, url)
  const hub = typedHub<typeof typedChat>(c)
  t.equal(hub.connection, c, 'the HubConnection is there for start, stop and events')
  t.equal((hub.invoke as unknown as { then?: unknown }).then, undefined, 'awaiting a namespace does not call a hub method named then')
  t.equal(await hub.invoke, hub.invoke)
  t.equal(hub.invoke.Echo, hub.invoke.Echo, 'one function per name')
  t.equal(await (hub.invoke as unknown as Record<string, (s: string) => Promise<string>>).echo('any case'), 'any case', 'hub method names are case-insensitive, as on the server')
})

const strict = defineHub({
  methods: {
    Poke: { args: [Type.Unknown()], async handler (ctx, value) { await ctx.clients.caller.send('Notice', value as number) } }
  },
  client: {
    Notice: { args: [Type.Integer({ minimum: 0 })] },
    Pick: { args: [Type.Array(Type.String(), { minItems: 1 })], returns: Type.String({ minLength: 1 }) }
  }
})

test('client results are checked against `returns`: a bad answer rejects, names the failure and is logged', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const { app, url } = await startServer(t, { hub: strict, path: '/hubs/strict', logger: true })
  app.log.warn = ((obj: Record<string, unknown>) => { lines.push(obj) }) as typeof app.log.warn
  const c = await connect(t, url)
  const id = c.connectionId as string
  const hub = app.signalr.hub('/hubs/strict', strict)
  c.on('Pick', (options: string[]) => options[0])
  t.equal(await hub.clients.client(id).invoke('Pick', ['first', 'second']), 'first', 'a good answer passes')
  c.off('Pick')
  c.on('Pick', () => '')
  await t.rejects(hub.clients.client(id).invoke('Pick', ['x']), {
    code: 'FST_SIGNALR_INVALID_CLIENT_RESULT',
    message: `The result of client method 'Pick' from connection '${id}' is invalid: must not have fewer than 1 characters.`
  })
  c.off('Pick')
  c.on('Pick', () => ({ not: 'a string' }))
  await t.rejects(hub.clients.client(id).invoke('Pick', ['x']), { code: 'FST_SIGNALR_INVALID_CLIENT_RESULT', message: /is invalid: must be string\.$/ })
  t.equal(lines.filter((l) => l.method === 'Pick' && l.connectionId === id).length, 2, 'each bad answer is logged once, with the connection')
  t.equal(await hub.connectionCount(), 1, 'the connection lives on')
})

test('outgoing arguments pass unchecked by default, and are checked with validateClientArguments', async (t) => {
  await t.test('default: the types guard sends, the run time does not', async (t) => {
    const { app, url } = await startServer(t, { hub: strict, path: '/hubs/strict' })
    const c = await connect(t, url)
    const calls = record(c, 'Notice')
    await app.signalr.hub('/hubs/strict').clients.all.send('Notice', -1)
    await until(() => calls.length === 1)
    t.same(calls, [[-1]])
  })

  await t.test('opted in: a bad call rejects before anything is sent', async (t) => {
    const { app, url } = await startServer(t, { hub: strict, path: '/hubs/strict', plugin: { validateClientArguments: true } })
    const c = await connect(t, url)
    const calls = record(c, 'Notice')
    const hub = app.signalr.hub('/hubs/strict')
    await t.rejects(hub.clients.all.send('Notice', -1), {
      code: 'FST_SIGNALR_INVALID_CLIENT_ARGUMENT', message: "Invalid call of client method 'Notice': argument 0 must be >= 0."
    })
    await t.rejects(hub.clients.all.send('Notice'), { message: "Invalid call of client method 'Notice': it takes 1 argument(s), not 0." })
    await t.rejects(hub.clients.all.send('Nothing', 1), { message: "Invalid call of client method 'Nothing': the hub's client schemas declare no such method." })
    await t.rejects(hub.clients.client(c.connectionId as string).invoke('Pick', []), { message: /argument 0 must not have fewer than 1 items/ })
    // Inside a hub method the error reaches the caller like any other
    await t.rejects(c.invoke('Poke', 'x'), { message: "An unexpected error occurred invoking 'Poke' on the server." })
    await c.invoke('Poke', 7)
    await until(() => calls.length === 1)
    t.same(calls, [[7]], 'only the good call arrived')
  })
})

test('app.signalr.hub(path, definition) refuses a definition that is not the one mapped there', async (t) => {
  const { app } = await startServer(t, { hub: strict, path: '/hubs/strict' })
  t.throws(() => app.signalr.hub('/hubs/strict', typedChat), { code: 'FST_SIGNALR_HUB_MISMATCH', message: "The hub mapped at '/hubs/strict' is not the definition given to app.signalr.hub()" })
  t.equal(app.signalr.hub('/hubs/strict', strict), app.signalr.hub('/hubs/strict'), 'the same context, typed')
})

test('a client method table that differs only in case is refused', async (t) => {
  t.throws(() => defineHub({ methods: {}, client: { Notice: { args: [] }, notice: { args: [] } } }), { code: 'FST_SIGNALR_INVALID_HUB', message: /client methods 'Notice' and 'notice' differ only in case/ })
  t.throws(() => defineHub({ methods: {}, client: { Bad: { args: 'nope' as unknown as [] } } }), { code: 'FST_SIGNALR_INVALID_HUB', message: /client method 'Bad': args must be an array/ })
})

test('fastify-signalr/client resolves through the package exports to the built module, which imports nothing', async (t) => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  t.ok(existsSync(`${root}dist/lib/client/index.js`), 'dist/ is built (npm test builds it; alone: npm run build)')
  // Plain node, no TypeScript loader: only the exports map can resolve the name
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "const m = await import('fastify-signalr/client'); console.log(typeof m.typedHub, import.meta.resolve('fastify-signalr/client'))"
  ], { cwd: root, encoding: 'utf8' }).trim()
  t.equal(out, `function file://${root}dist/lib/client/index.js`)
  // What an application's bundler takes in when it imports the subpath: that one file
  // (tsconfigRaw: this repository's tsconfig paths would point esbuild at the sources)
  const result = await build({
    stdin: { contents: "import { typedHub } from 'fastify-signalr/client'; console.log(typedHub)", resolveDir: root },
    tsconfigRaw: {},
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'browser',
    logLevel: 'silent'
  })
  t.same(Object.keys(result.metafile.inputs).filter((f) => f !== '<stdin>'), ['dist/lib/client/index.js'])
  t.notMatch(result.outputFiles[0].text, /typebox|fastify|FST_SIGNALR|Compile\(/, 'no schema or server code in the bundle')
})
