// The official .NET client (Microsoft.AspNetCore.SignalR.Client 10.0.15, the console app in
// test/interop/dotnet) against this server: the 18 checks of its scenario over WebSockets,
// Server-Sent Events and Long Polling in JSON, and WebSockets and Long Polling in
// MessagePack (the .NET client cannot put MessagePack on SSE: that run reports
// 'unsupported'). One assertion per check. Then stateful reconnect
// (HttpConnectionOptions.UseStatefulReconnect) over WebSockets in both protocols, through a
// loopback TCP proxy that the hub cuts in the middle of a burst each way. Skipped where
// there is no dotnet SDK.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { buildProject, CHECKS, CLIENT_PROJECT, COMBOS, dotnetMissing, runInteropClient, STATEFUL_CHECKS, type DotnetProtocol } from './fixtures/dotnet.js'
import { startServer } from './fixtures/server.js'
import { startTcpProxy, type TcpProxy } from './fixtures/tcp-proxy.js'

const missing = dotnetMissing()
if (missing !== false) {
  console.log(`# skipping the .NET interop tests: ${missing}`)
  t.plan(0, missing)
} else {
  // The first build on a fresh machine restores the client's packages from NuGet
  t.setTimeout(6 * 60_000)

  t.test('the .NET client against fastify-signalr', async (t) => {
    const build = await buildProject(CLIENT_PROJECT)
    t.comment(`dotnet build InteropClient: ${build.ms} ms`)
    if (!build.ok) {
      t.fail(`dotnet build of ${CLIENT_PROJECT} failed`, { output: build.output })
      return
    }
    const { url } = await startServer(t)

    // One combination after another: the client has a 55 s budget per run, and several
    // .NET processes at once on a 2-core machine would only slow each other down
    for (const [transport, protocol] of COMBOS) {
      const run = await runInteropClient(url, transport, protocol)
      const name = `${transport}/${protocol}`
      t.comment(`${name}: ${run.ms} ms, exit ${String(run.code)}`)
      if (transport === 'ServerSentEvents' && protocol === 'messagepack') {
        t.same(run.checks.map((c) => [c.check, c.ok]), [['unsupported', true]], `${name}/unsupported ${run.checks[0]?.detail ?? ''}`)
        t.equal(run.code, 0, `${name} exits 0`)
        continue
      }
      for (const check of run.checks) t.ok(check.ok, `${name}/${check.check}: ${check.detail}`)
      t.same(run.checks.map((c) => c.check), CHECKS, `${name} ran all ${CHECKS.length} checks, in order`)
      t.same(run.summary, { passed: CHECKS.length, failed: 0 }, `${name} summary line`)
      t.equal(run.code, 0, `${name} exits 0${run.noise === '' ? '' : `; output: ${run.noise}`}`)
    }
  })
}

/** The hub the stateful run talks to: it cuts the proxy half-way through each burst. */
function statefulHub (proxy: () => TcpProxy, record: { cuts: number[], received: number[], disconnects: number }) {
  return defineHub({
    methods: {
      Burst: {
        args: [Type.Integer({ minimum: 1, maximum: 10_000 }), Type.Integer({ minimum: 0, maximum: 100 })],
        returns: Type.Integer(),
        async handler (ctx, n, delayMs) {
          for (let i = 0; i < n; i++) {
            await ctx.clients.caller.send('Item', i)
            if (i === Math.floor(n / 2)) record.cuts.push(proxy().cut())
            if (delayMs > 0) await sleep(delayMs)
          }
          return n
        }
      },
      Record: {
        args: [Type.Integer()],
        handler: (_ctx, i) => {
          record.received.push(i)
          if (record.received.length === 80) record.cuts.push(proxy().cut())
        }
      },
      Received: { args: [], handler: () => record.received },
      Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text }
    },
    onDisconnected () { record.disconnects++ }
  })
}

if (missing === false) {
  t.test('stateful reconnect with the .NET client: a socket cut mid-burst each way loses and doubles nothing', async (t) => {
    const build = await buildProject(CLIENT_PROJECT)
    if (!build.ok) {
      t.fail(`dotnet build of ${CLIENT_PROJECT} failed`, { output: build.output })
      return
    }
    for (const protocol of ['json', 'messagepack'] as DotnetProtocol[]) {
      const record = { cuts: [] as number[], received: [] as number[], disconnects: 0 }
      let proxy: TcpProxy | undefined
      const server = await startServer(t, {
        hub: statefulHub(() => proxy as TcpProxy, record),
        path: '/hubs/stateful',
        plugin: { allowStatefulReconnects: true, transports: ['WebSockets'] }
      })
      const port = Number(new URL(server.base).port)
      proxy = await startTcpProxy(t, port)
      const run = await runInteropClient(`http://127.0.0.1:${proxy.port}/hubs/stateful`, 'WebSockets', protocol, ['--mode', 'stateful'])
      const name = `WebSockets/${protocol} stateful`
      t.comment(`${name}: ${run.ms} ms, exit ${String(run.code)}, proxy accepted ${proxy.accepted} connections, cuts ${JSON.stringify(record.cuts)}`)
      for (const check of run.checks) t.ok(check.ok, `${name}/${check.check}: ${check.detail}`)
      t.same(run.checks.map((c) => c.check), STATEFUL_CHECKS, `${name} ran all ${STATEFUL_CHECKS.length} checks, in order`)
      t.equal(run.code, 0, `${name} exits 0${run.noise === '' ? '' : `; output: ${run.noise}`}`)
      t.equal(record.cuts.length, 2, 'the hub cut the connection twice (once per burst)')
      t.ok(record.cuts.every((n) => n >= 1), 'and each cut found the socket to cut')
      t.same(record.received, Array.from({ length: 200 }, (_, i) => i), 'the server ran each of the 200 client messages once, in order')
      t.equal(record.disconnects, 1, 'the hub saw one disconnect: the stop at the end, not the cuts')
    }
  })
}
