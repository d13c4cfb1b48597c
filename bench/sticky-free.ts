// The added latency of request forwarding (no sticky sessions), short and bounded:
//   node --import tsx bench/sticky-free.ts [--calls=150] [--clients=4]
// Invoke round trips (Send to the caller, then its Completion) from the official JS client over
// Long Polling and SSE, in four set-ups: one node without forwarding; one node with it; one
// node behind the round-robin proxy; three nodes with forwarding behind the proxy, which never
// sends two consecutive requests of a connection to one node. The proxy's own hop is the
// difference of the first and third; forwarding's, that of the third and fourth. Redis's
// INFO commandstats gives the PUBLISHes per forwarded request. Writes bench/results/sticky-free.md.
import { writeFileSync } from 'node:fs'
import { buildClient, type ClientOptions } from '../test/fixtures/client.js'
import { FLEET_PATH, spawnFleetServer, type ChildServer } from '../test/fixtures/fleet.js'
import { startRedis } from '../test/fixtures/redis.js'
import { startRoundRobinProxy } from '../test/fixtures/round-robin-proxy.js'
import { counts } from '../test/fixtures/sticky-fleet.js'

const arg = (name: string, fallback: number): number => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const CALLS = arg('calls', 150)
const CLIENTS = arg('clients', 4)

const teardowns: Array<() => unknown> = []
const t = { teardown (fn: () => unknown) { teardowns.push(fn) } }

function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function measure (url: string, o: ClientOptions): Promise<number[]> {
  const clients = []
  for (let i = 0; i < CLIENTS; i++) {
    const c = buildClient(url, o)
    await c.start()
    clients.push(c)
  }
  const samples: number[] = []
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < 10; i++) await c.invoke('Send', 'caller', [], 'warm')
    for (let i = 0; i < CALLS; i++) {
      const started = process.hrtime.bigint()
      await c.invoke('Send', 'caller', [], String(i))
      samples.push(Number(process.hrtime.bigint() - started) / 1e6)
    }
  }))
  await Promise.all(clients.map(async (c) => { await c.stop() }))
  return samples.sort((a, b) => a - b)
}

function publishes (info: string): number {
  const m = /cmdstat_publish:calls=(\d+)/.exec(info)
  return m === null ? 0 : Number(m[1])
}

const redis = await startRedis(t)
const rows: string[] = []
const transports: Array<[string, ClientOptions]> = [['LongPolling', { transport: 'LongPolling' }], ['ServerSentEvents', { transport: 'ServerSentEvents' }]]
try {
  const plain = await spawnFleetServer(t, redis.port, {})
  const single = await spawnFleetServer(t, redis.port, { FORWARDING: '1' })
  const proxiedSingle = await startRoundRobinProxy(t, [Number(new URL(plain.url).port)])
  const three: ChildServer[] = await Promise.all([0, 1, 2].map(async () => await spawnFleetServer(t, redis.port, { FORWARDING: '1' })))
  const proxied = await startRoundRobinProxy(t, three.map((n) => Number(new URL(n.url).port)))
  const setups: Array<[string, string]> = [
    ['1 node, forwarding off, direct', plain.url],
    ['1 node, forwarding on, direct', single.url],
    ['1 node, forwarding off, via proxy', proxiedSingle.url + FLEET_PATH],
    ['3 nodes, forwarding on, via proxy', proxied.url + FLEET_PATH]
  ]
  rows.push(`calls: ${CLIENTS} clients x ${CALLS} sequential invokes per set-up and transport`, '',
    '| transport | set-up | p50 ms | p99 ms | PUBLISH per forwarded request |', '|---|---|---:|---:|---:|')
  for (const [name, o] of transports) {
    for (const [label, url] of setups) {
      const before = publishes(redis.cli('INFO', 'commandstats'))
      const forwardedBefore = label.startsWith('3') ? (await Promise.all(three.map(counts))).reduce((s, c) => s + c.forwarded, 0) : 0
      const samples = await measure(url, o)
      const published = publishes(redis.cli('INFO', 'commandstats')) - before
      const forwarded = label.startsWith('3') ? (await Promise.all(three.map(counts))).reduce((s, c) => s + c.forwarded, 0) - forwardedBefore : 0
      const ratio = forwarded === 0 ? '-' : (published / forwarded).toFixed(2)
      const row = `| ${name} | ${label} | ${quantile(samples, 0.5).toFixed(2)} | ${quantile(samples, 0.99).toFixed(2)} | ${ratio} |`
      console.log(row)
      rows.push(row)
    }
  }
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
rows.push('', 'PUBLISH per forwarded request counts every PUBLISH of the run (the request, the answer, the probes of held polls) over the requests forwarded.')
writeFileSync(new URL('./results/sticky-free.md', import.meta.url), `# Request forwarding: added latency\n\n${new Date().toISOString()}, ${process.platform}, node ${process.version}\n\n${rows.join('\n')}\n`)
process.exit(0)
