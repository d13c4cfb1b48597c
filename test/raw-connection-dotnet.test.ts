// The official .NET client's HttpConnection (Microsoft.AspNetCore.Http.Connections.Client,
// test/interop/dotnet --mode raw) against an echo connection handler: every transport, in
// each transfer format it allows, bytes echoed exactly up to the limit and many in order,
// and the handler's return ending the client's input. Skipped where there is no dotnet SDK.
import t from 'tap'
import Fastify from 'fastify'
import signalr, { type RawConnection } from '../index.js'
import { buildProject, CLIENT_PROJECT, dotnetMissing, RAW_CHECKS, runInteropClient, type DotnetTransport } from './fixtures/dotnet.js'
import { listen } from './fixtures/listen.js'

const RUNS: Array<[DotnetTransport, 'Text' | 'Binary']> = [
  ['WebSockets', 'Text'], ['WebSockets', 'Binary'], ['ServerSentEvents', 'Text'], ['LongPolling', 'Text'], ['LongPolling', 'Binary']
]

const missing = dotnetMissing()
if (missing !== false) {
  console.log(`# skipping the .NET raw connection tests: ${missing}`)
  t.plan(0, missing)
} else {
  // The first build on a fresh machine restores the client's packages from NuGet
  t.setTimeout(6 * 60_000)

  t.test('the .NET client\'s HttpConnection against an echo connection handler', async (t) => {
    const build = await buildProject(CLIENT_PROJECT)
    t.comment(`dotnet build InteropClient: ${build.ms} ms`)
    if (!build.ok) {
      t.fail(`dotnet build of ${CLIENT_PROJECT} failed`, { output: build.output })
      return
    }
    const app = Fastify({ forceCloseConnections: true })
    await app.register(signalr)
    const ends: Array<Promise<Error | undefined>> = []
    app.signalrConnection('/echo', async (c: RawConnection) => {
      ends.push(c.closed)
      for await (const m of c) {
        if (m.toString() === 'bye') return
        await c.send(m)
      }
    })
    const base = await listen(t, app)
    for (const [transport, format] of RUNS) {
      const run = await runInteropClient(`${base}/echo`, transport, 'json', ['--mode', 'raw', '--format', format])
      const name = `${transport}/${format}`
      t.comment(`${name}: ${run.ms} ms, exit ${String(run.code)}`)
      for (const check of run.checks) t.ok(check.ok, `${name}/${check.check}: ${check.detail}`)
      t.same(run.checks.map((c) => c.check), RAW_CHECKS, `${name} ran all ${RAW_CHECKS.length} checks, in order`)
      t.equal(run.code, 0, `${name} exits 0${run.noise === '' ? '' : `; output: ${run.noise}`}`)
    }
    t.equal(ends.length, RUNS.length, 'one handler run per client run')
    t.same(await Promise.all(ends), RUNS.map(() => undefined), 'each ended cleanly')
  })
}
