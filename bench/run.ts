// npm run bench [-- --quick] [-- --peers=ours,ws] [-- --scenarios=echo-json,idle]
//
// Runs every scenario against every peer, one server process per peer and load clients in
// their own processes, all on 127.0.0.1. Prints a markdown table (each peer's ratio to ours),
// writes bench/results/latest.md (quick: quick.md), an SVG chart next to it and the raw JSON.
// Exit code 1 only when the harness fails (a server does not start, a load client crashes,
// a scenario overruns its hard bound); never because a figure is slow.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import {
  AddressPool, FD_HEADROOM, FULL, HarnessError, PEERS, QUICK, ROOT, SCENARIOS, prepareAspNet, runScenario, scaleScenario, scaleUnsupported, scenarioBoundMs,
  startRedisFleet, startServer,
  type PeerId, type PeerSpec, type ScenarioSpec, type ServerHandle
} from './harness.js'
import { detailsTable, markdownTable, svgChart, type Outcome, type Results } from './report.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const listArg = (name: string): string[] | undefined => {
  const a = args.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? undefined : a.slice(name.length + 3).split(',').filter((x) => x !== '')
}
const settings = quick ? QUICK : FULL
const QUICK_SCENARIOS = ['echo-json', 'echo-msgpack', 'broadcast-json', 'idle', 'connect', 'lp-echo-json']
const scenarioIds = listArg('scenarios') ?? (quick ? QUICK_SCENARIOS : SCENARIOS.map((s) => s.id))
// Presentation order is SCENARIOS'; quick runs measure idle first, while the shared servers
// are still fresh (their RSS baseline would otherwise include the earlier scenarios' garbage)
// --scale=3000,10000: scale scenarios at those connection counts (in place of 10k, 30k, 100k)
const scaleCounts = listArg('scale')?.map(Number).filter((n) => Number.isInteger(n) && n > 0)
const catalogue = scaleCounts === undefined ? SCENARIOS : [...SCENARIOS.filter((s) => s.kind !== 'scale'), ...scaleCounts.map(scaleScenario)]
const scenarios = catalogue.filter((s) => scenarioIds.includes(s.id) || (scaleCounts !== undefined && s.kind === 'scale'))
const runOrder = quick ? [...scenarios].sort((a, b) => Number(b.kind === 'idle') - Number(a.kind === 'idle')) : scenarios
const peerIds = listArg('peers') ?? PEERS.map((p) => p.id)
const peers = PEERS.filter((p) => peerIds.includes(p.id))
if (!peers.some((p) => p.id === 'ours')) peers.unshift(PEERS[0]) // ratios need ours
const started = Date.now()
const log = (s: string): void => { console.log(s) }

// The whole run's bound, far above its expected length (a watchdog, not a budget)
const runBound = (quick ? 150_000 : 20 * 60_000) + scenarios.filter((x) => x.kind === 'scale').reduce((sum, x) => sum + 2 * scenarioBoundMs(x, settings), 0)
const watchdog = setTimeout(() => {
  console.error(`bench: the whole run exceeded ${runBound / 1000} s; giving up`)
  process.exit(1)
}, runBound)
watchdog.unref()

const skippedPeers = new Map<PeerId, string>()
let harnessFailed = false

if (peers.some((p) => p.id === 'aspnetcore')) {
  try {
    const why = prepareAspNet(log)
    if (why !== undefined) {
      skippedPeers.set('aspnetcore', why)
      log(`ASP.NET Core skipped: ${why}`)
    }
  } catch (err) {
    harnessFailed = true
    skippedPeers.set('aspnetcore', 'build failed')
    console.error((err as Error).message)
  }
}

const machine = `${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`
const dotnetVersion = skippedPeers.has('aspnetcore') ? 'n/a' : spawnSync('dotnet', ['--version'], { encoding: 'utf8' }).stdout?.trim()
const loadAtStart = os.loadavg().map((x) => x.toFixed(2)).join(' ')
log(`bench (${quick ? 'quick' : 'full'}): ${scenarios.length} scenarios × ${peers.length} peers on ${machine}; Node ${process.version}, .NET ${dotnetVersion}; load average ${loadAtStart}`)

const results: Results = new Map()
const addresses = new AddressPool()
// Quick runs keep one server per peer for every scenario; full runs start a fresh one per
// scenario so each is measured alone (and idle memory starts from a clean process)
const shared = new Map<string, ServerHandle>()

async function serverFor (peer: PeerSpec, scenario: ScenarioSpec): Promise<ServerHandle> {
  if (scenario.kind === 'broadcast-redis') return await startRedisFleet(peer)
  if (scenario.kind === 'scale') {
    return await startServer(peer, { env: { BENCH_STATS: '1', KEEPALIVE_MS: String(settings.scale.keepAliveMs) }, fds: (scenario.connections ?? 0) + FD_HEADROOM })
  }
  // Socket.IO takes one parser per server: MessagePack scenarios get a server of their own
  const options = peer.id === 'socketio' && scenario.protocol === 'messagepack' ? { env: { SIO_PARSER: 'msgpack' } } : {}
  if (!quick) return await startServer(peer, options)
  const key = `${peer.id}${options.env === undefined ? '' : '/msgpack'}`
  const existing = shared.get(key)
  if (existing !== undefined && existing.exitCode === undefined) return existing
  const s = await startServer(peer, options)
  shared.set(key, s)
  return s
}

if (quick) {
  // Start the shared servers side by side: they sit idle until their turn
  const startedServers = await Promise.allSettled(peers.filter((p) => !skippedPeers.has(p.id)).map(async (p) => {
    shared.set(p.id, await startServer(p))
  }))
  for (const r of startedServers) {
    if (r.status === 'rejected') console.error(`  ${(r.reason as Error).message}`)
  }
}

for (const scenario of runOrder) {
  const byPeer = new Map<PeerId, Outcome>()
  results.set(scenario.id, byPeer)
  for (const peer of peers) {
    const skip = skippedPeers.get(peer.id) ?? peer.unsupported(scenario) ?? scaleUnsupported(scenario)
    if (skip !== undefined) {
      byPeer.set(peer.id, { kind: 'skipped', reason: skip })
      continue
    }
    const t0 = Date.now()
    let server: ServerHandle | undefined
    try {
      server = await serverFor(peer, scenario)
      const m = await runScenario(server, scenario, settings, addresses)
      byPeer.set(peer.id, { kind: 'ok', m })
      const figure = scenario.kind === 'scale'
        ? `${m.kbPerConnection?.toFixed(1) ?? '?'} KB/conn, loop p99 ${m.loopP99Ms?.toFixed(1) ?? '?'} ms, connect all ${m.connectAllS?.toFixed(1) ?? '?'} s, broadcast to all ${m.broadcastAllMs?.toFixed(0) ?? '?'} ms, close all ${m.closeAllMs?.toFixed(0) ?? '?'} ms`
        : m.kbPerConnection !== undefined
          ? `${m.kbPerConnection.toFixed(1)} KB/conn`
          : `${Math.round(m.rate ?? 0)}/s p50 ${m.p50Ms?.toFixed(2) ?? '–'} ms p99 ${m.p99Ms?.toFixed(2) ?? '–'} ms, server CPU ${Math.round(m.serverCpuPct ?? 0)} %`
      log(`  ${scenario.id.padEnd(18)} ${peer.label.padEnd(16)} ${figure}${m.errorCount > 0 ? ` (${m.errorCount} errors)` : ''} [${((Date.now() - t0) / 1000).toFixed(1)} s]`)
    } catch (err) {
      if (!(err instanceof HarnessError)) throw err
      harnessFailed = true
      byPeer.set(peer.id, { kind: 'failed', reason: err.message })
      console.error(`  ${scenario.id.padEnd(18)} ${peer.label.padEnd(16)} FAILED: ${err.message}`)
      if (server !== undefined && quick) {
        await server.stop()
        for (const [key, h] of shared) if (h === server) shared.delete(key)
      }
    } finally {
      if (!quick || scenario.kind === 'broadcast-redis' || scenario.kind === 'scale') await server?.stop()
    }
  }
}
for (const s of shared.values()) await s.stop()

const seconds = (Date.now() - started) / 1000
const s = settings
const setup = [
  `echo: ${s.echo.connections} connections × ${s.echo.durationMs / 1000} s, ${s.payloadBytes}-byte string, closed loop`,
  `broadcast: ${s.broadcast.connections} receivers + 1 sender × ${s.broadcast.durationMs / 1000} s, at most ${s.broadcast.window} broadcasts in flight`,
  `idle: ${s.idle.connections} connections`,
  `connect: ${s.connect.processes * s.connect.concurrency} cycles in flight × ${s.connect.durationMs / 1000} s`,
  `long polling: ${s.lp.connections} connections × ${s.lp.durationMs / 1000} s`,
  `scale: ${s.scale.perProcess} connections per load-client process, each from its own 127.0.x.y, keep-alive every ${s.scale.keepAliveMs / 1000} s, loop delay sampled over ${s.scale.sampleMs / 1000} s`,
  `warm-up ${s.warmupMs / 1000} s before each window`
].join('; ')
const table = markdownTable(scenarios, peers, results)
const details = detailsTable(scenarios, peers, results)
const skipLines = [...skippedPeers].map(([id, why]) => `- ${PEERS.find((p) => p.id === id)?.label ?? id}: skipped (${why})`)
const md = [
  `# Benchmark results (${quick ? 'quick smoke run' : 'full run'})`,
  '',
  `${new Date().toISOString()} — ${machine}; Node ${process.version}; .NET ${dotnetVersion}; load average at start ${loadAtStart}; run took ${seconds.toFixed(0)} s.`,
  '',
  `Setup: ${setup}. Every server and every load client is its own process on 127.0.0.1; the figures are from one run on a shared machine, so read the ratios, not the absolute numbers.`,
  '',
  table,
  '',
  'n/a: the peer cannot do it (raw ws has no HTTP transport). Socket.IO\'s MessagePack rows use socket.io-msgpack-parser.',
  ...(skipLines.length > 0 ? ['', ...skipLines] : []),
  '',
  '## Details',
  '',
  details,
  '',
  `![chart](${listArg('out')?.[0] ?? (quick ? 'quick' : 'latest')}.svg)`,
  ''
].join('\n')

log('')
log(table)
log('')
const outDir = `${ROOT}bench/results`
// --out=name writes bench/results/name.{md,svg,json} instead (a partial run beside latest.md)
const base = listArg('out')?.[0] ?? (quick ? 'quick' : 'latest')
mkdirSync(outDir, { recursive: true })
writeFileSync(`${outDir}/${base}.md`, md)
writeFileSync(`${outDir}/${base}.svg`, svgChart(scenarios, peers, results, `${quick ? 'quick smoke run' : 'full run'}, ${new Date().toISOString().slice(0, 10)}, ${machine}, Node ${process.version}`))
writeFileSync(`${outDir}/${base}.json`, JSON.stringify({ settings, machine, node: process.version, dotnet: dotnetVersion, results: Object.fromEntries([...results].map(([k, v]) => [k, Object.fromEntries(v)])) }, null, 2))
log(`wrote bench/results/${base}.md, ${base}.svg and ${base}.json in ${seconds.toFixed(0)} s (scenario bound ${Math.round(Math.max(...scenarios.map((x) => scenarioBoundMs(x, settings))) / 1000)} s)`)
process.exit(harnessFailed ? 1 : 0)
