// The official .NET client (test/interop/dotnet, --mode functional) against the hubs of
// test/fixtures/functional-hubs.ts: what its own functional suite
// (src/SignalR/clients/csharp/Client/test/FunctionalTests) expects of a server: negotiate
// redirects with a new token, the old-protocol refusal, case-insensitive hub paths, byte[]
// and DateTime both ways, and the error texts it matches on. Every transport and protocol
// it can use; skipped where there is no dotnet SDK.
import t from 'tap'
import { buildProject, CLIENT_PROJECT, COMBOS, dotnetMissing, FUNCTIONAL_CHECKS, runInteropClient } from './fixtures/dotnet.js'
import { functionalServer } from './fixtures/functional-hubs.js'

const missing = dotnetMissing()
if (missing !== false) {
  console.log(`# skipping the .NET functional tests: ${missing}`)
  t.plan(0, missing)
} else {
  // The first build on a fresh machine restores the client's packages from NuGet
  t.setTimeout(8 * 60_000)

  t.test('the .NET client: what its functional suite expects of a server', async (t) => {
    const build = await buildProject(CLIENT_PROJECT)
    t.comment(`dotnet build InteropClient: ${build.ms} ms`)
    if (!build.ok) {
      t.fail(`dotnet build of ${CLIENT_PROJECT} failed`, { output: build.output })
      return
    }
    const { base, issued, refused } = await functionalServer(t)
    let runs = 0
    // One run after another: several .NET processes on a 2-core machine only slow each other
    for (const [transport, protocol] of COMBOS) {
      if (transport === 'ServerSentEvents' && protocol === 'messagepack') continue
      const run = await runInteropClient(base, transport, protocol, ['--mode', 'functional'])
      runs++
      const name = `${transport}/${protocol}`
      t.comment(`${name}: ${run.ms} ms, exit ${String(run.code)}`)
      for (const check of run.checks) t.ok(check.ok, `${name}/${check.check}: ${check.detail}`)
      t.same(run.checks.map((c) => c.check), FUNCTIONAL_CHECKS, `${name} ran all ${FUNCTIONAL_CHECKS.length} checks, in order`)
      t.equal(run.code, 0, `${name} exits 0${run.noise === '' ? '' : `; output: ${run.noise}`}`)
    }
    t.equal(issued.length, runs, 'each run was redirected once, with a token of its own')
    t.equal(refused(), 0, 'no request reached the guarded hub without the redirect\'s token')
  })
}
