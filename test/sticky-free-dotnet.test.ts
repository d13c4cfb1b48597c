// The official .NET client on the sticky-free rig (three nodes with request forwarding behind
// a round-robin proxy that never repeats a node per connection), over Long Polling and
// Server-Sent Events: 50 sequence-numbered calls, each message back once, in order
// (test/interop/dotnet, --mode sticky). Skips with the reason without dotnet or redis-server.
import t from 'tap'
import { buildProject, CLIENT_PROJECT, dotnetMissing, runInteropClient, type DotnetTransport } from './fixtures/dotnet.js'
import { redisMissing } from './fixtures/redis.js'
import { counts, fleetBehindProxy } from './fixtures/sticky-fleet.js'

const missing = dotnetMissing() || redisMissing()
if (missing !== false) {
  console.log(`# skipping the .NET sticky-free test: ${missing}`)
  t.pass(`skipped: ${missing}`)
} else {
  t.test('the .NET client keeps order across nodes over Long Polling and SSE', async (t) => {
    const build = await buildProject(CLIENT_PROJECT)
    t.ok(build.ok, `the .NET client builds (${build.ms} ms)`, { output: build.ok ? undefined : build.output })
    if (!build.ok) return
    const fleet = await fleetBehindProxy(t)
    for (const transport of ['LongPolling', 'ServerSentEvents'] as DotnetTransport[]) {
      const run = await runInteropClient(fleet.url, transport, 'json', ['--mode', 'sticky'])
      t.same(run.checks.map((c) => [c.check, c.ok]), [['sticky-connect', true], ['sticky-sequence', true]], `${transport}: every check passes`, { checks: run.checks, noise: run.noise })
      t.equal(run.code, 0, `${transport}: the client exits 0`)
    }
    t.equal(fleet.proxy.repeats, 0, 'the proxy never repeated a node within a connection')
    const perNode = await Promise.all(fleet.nodes.map(counts))
    // Two connections may well have one owner: every node took part, as owner or as forwarder
    t.ok(perNode.every((n) => n.forwarded + n.served > 0) && perNode.some((n) => n.forwarded > 0),
      `every node forwarded or served (${JSON.stringify(perNode.map((n) => [n.forwarded, n.served]))})`)
  })
}
