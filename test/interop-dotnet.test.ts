// The official .NET client (Microsoft.AspNetCore.SignalR.Client 10.0.15, the console app in
// test/interop/dotnet) against this server: the 18 checks of its scenario over WebSockets,
// Server-Sent Events and Long Polling in JSON, and WebSockets and Long Polling in
// MessagePack (the .NET client cannot put MessagePack on SSE: that run reports
// 'unsupported'). One assertion per check. Skipped where there is no dotnet SDK.
import t from 'tap'
import { buildProject, CHECKS, CLIENT_PROJECT, COMBOS, dotnetMissing, runInteropClient } from './fixtures/dotnet.js'
import { startServer } from './fixtures/server.js'

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
