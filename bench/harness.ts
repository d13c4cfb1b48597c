// The runner's machinery: peers and how to start them, load-client processes over IPC,
// /proc sampling (RSS, CPU), and one function per scenario kind. Used by run.ts and
// profile.ts. Every wait here has a bound; a server that does not start or a client
// process that dies is a HarnessError (exit code 1), a slow figure never is.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Histogram, nowMicros } from './load/histogram.js'
import type { ChildMessage, ClientConfig, ParentMessage, Role, RoleResult } from './load/messages.js'
import type { Family, Protocol, Transport } from './load/wire.js'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HUB_PATH = '/hubs/scenario'
// Raise the descriptor limit for the exec'd program: 65536 if allowed, else the hard limit
const ULIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"'
/** The same for a server that must hold `n` sockets. */
const ulimitFor = (n: number): string => `ulimit -n ${n} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`

/** The descriptor limit a child of this process can raise itself to (its hard limit). */
export function hardFdLimit (): number {
  const out = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout?.trim()
  return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out)
}
/** Descriptors a scale server needs beyond one per connection (listeners, stdio, the loop). */
export const FD_HEADROOM = 1024

export class HarnessError extends Error {}

// ---------------------------------------------------------------------------------------
// Peers

export type PeerId = 'ours' | 'ours-otel-metrics' | 'ours-otel' | 'ours-otel-sampled' | 'ws' | 'socketio' | 'aspnetcore'

export interface PeerSpec {
  id: PeerId
  label: string
  family: Family
  /** Why a scenario cannot run on this peer, or undefined when it can. */
  unsupported: (s: ScenarioSpec) => string | undefined
  /** Set in the server's environment (the OpenTelemetry variants of ours). */
  env?: Record<string, string>
}

const echoOnly = (s: ScenarioSpec): string | undefined => s.kind === 'echo' && s.transport !== 'lp' ? undefined : 'this variant measures the per-call cost of echo over WebSockets only'

/** The scale scenarios run on ours and on the floor; the idle scenario compares every peer. */
const scaleOnly = (s: ScenarioSpec): string | undefined => s.kind === 'scale' ? 'the scale scenarios compare ours with the raw ws floor' : undefined

/** Why this machine cannot run a scale scenario: one process must hold every connection's descriptor. */
export function scaleUnsupported (s: ScenarioSpec): string | undefined {
  if (s.kind !== 'scale') return undefined
  const need = (s.connections ?? 0) + FD_HEADROOM
  const hard = hardFdLimit()
  return hard < need ? `needs ${need} file descriptors in one process; the hard limit here is ${hard} (raise it with ulimit -Hn or LimitNOFILE, which needs CAP_SYS_RESOURCE)` : undefined
}

export const PEERS: PeerSpec[] = [
  { id: 'ours', label: 'fastify-signalr', family: 'signalr', unsupported: () => undefined },
  // Ours again with OpenTelemetry SDKs registered (bench/servers/fastify-signalr-otel.ts): each
  // one's ratio to ours is what that SDK setup costs. The two narrower variants measure the
  // per-call cost only, so they run the echo scenarios alone.
  { id: 'ours-otel-metrics', label: 'fastify-signalr + OTel metrics', family: 'signalr', unsupported: echoOnly, env: { OTEL_BENCH_SIGNALS: 'metrics' } },
  {
    id: 'ours-otel',
    label: 'fastify-signalr + OTel metrics + traces (always on)',
    family: 'signalr',
    unsupported: () => undefined,
    env: { OTEL_BENCH_SIGNALS: 'metrics,traces', OTEL_BENCH_SAMPLER: 'always_on' }
  },
  {
    id: 'ours-otel-sampled',
    label: 'fastify-signalr + OTel metrics + traces (1 % sampled)',
    family: 'signalr',
    unsupported: echoOnly,
    env: { OTEL_BENCH_SIGNALS: 'metrics,traces', OTEL_BENCH_SAMPLER: 'ratio:0.01' }
  },
  {
    id: 'ws',
    label: 'ws (floor)',
    family: 'signalr',
    unsupported: (s) => s.transport === 'lp' ? 'raw ws has no HTTP transport' : s.kind === 'broadcast-redis' ? 'raw ws has no backplane' : undefined
  },
  {
    id: 'socketio',
    label: 'Socket.IO 4',
    family: 'socketio',
    unsupported: scaleOnly
  },
  { id: 'aspnetcore', label: 'ASP.NET Core', family: 'signalr', unsupported: scaleOnly }
]

const ASPNET_DIR = `${ROOT}bench/aspnetcore`
const ASPNET_DLL = `${ASPNET_DIR}/bin/Release/net10.0/AspNetCoreServer.dll`

function hasDotnet (): boolean {
  return spawnSync('dotnet', ['--version'], { stdio: 'ignore', timeout: 20_000 }).status === 0
}

/** Why ASP.NET Core cannot run here, or undefined; builds it when the build is missing or stale. */
export function prepareAspNet (log: (s: string) => void): string | undefined {
  if (!hasDotnet()) return 'dotnet is not on PATH'
  const sources = ['Program.cs', 'AspNetCoreServer.csproj'].map((f) => statSync(`${ASPNET_DIR}/${f}`).mtimeMs)
  if (existsSync(ASPNET_DLL) && statSync(ASPNET_DLL).mtimeMs >= Math.max(...sources)) return undefined
  log('building bench/aspnetcore (dotnet build -c Release)…')
  const r = spawnSync('dotnet', ['build', '-c', 'Release', `${ASPNET_DIR}/AspNetCoreServer.csproj`], {
    encoding: 'utf8', timeout: 300_000, env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' }
  })
  if (r.status !== 0 || !existsSync(ASPNET_DLL)) {
    throw new HarnessError(`dotnet build of bench/aspnetcore failed:\n${(r.stdout ?? '').slice(-2000)}${(r.stderr ?? '').slice(-2000)}`)
  }
  return undefined
}

function serverArgv (peer: PeerId, nodeArgs: string[], imports: string[], redisPort?: string): string[] {
  // Imports after tsx wrap its loader (the profiler's source capture relies on that)
  const tsxServer = (file: string): string[] => [process.execPath, ...nodeArgs, '--import', 'tsx', ...imports.flatMap((i) => ['--import', i]), `bench/servers/${file}`]
  switch (peer) {
    case 'ours': return tsxServer('fastify-signalr.ts')
    case 'ours-otel-metrics':
    case 'ours-otel':
    case 'ours-otel-sampled': return tsxServer('fastify-signalr-otel.ts')
    case 'ws': return tsxServer('ws.ts')
    case 'socketio': return tsxServer('socketio.ts')
    case 'aspnetcore': return ['dotnet', ASPNET_DLL, '--urls', 'http://127.0.0.1:0', ...(redisPort === undefined ? [] : ['--Redis', `127.0.0.1:${redisPort}`])]
  }
}

// ---------------------------------------------------------------------------------------
// /proc sampling (Linux; elsewhere the figures are simply missing)

export function rssKb (pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim() ?? '') || 100

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[11] is utime, fields[12] stime (the 14th and 15th of the full line)
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function sampleRss (pid: number, samples: number): Promise<number | undefined> {
  const out: number[] = []
  for (let i = 0; i < samples; i++) {
    const v = rssKb(pid)
    if (v !== undefined) out.push(v)
    if (i < samples - 1) await sleep(250)
  }
  return out.length === 0 ? undefined : median(out)
}

// ---------------------------------------------------------------------------------------
// Server processes

export interface ServerHandle {
  peer: PeerSpec
  pid: number
  /** broadcast-redis: the fleet's second server process (receivers are spread over both). */
  second?: ServerHandle
  httpBase: string
  /** Set when the process has exited. */
  exitCode: number | null | undefined
  stderrTail: () => string
  /** Lines the server printed that start with `bench ` (the scale probes' reports). */
  benchLines: string[]
  /** SIGTERM, then SIGKILL after `graceMs` (6 s unless given). */
  stop: (graceMs?: number) => Promise<void>
}

export async function startServer (peer: PeerSpec, options: { nodeArgs?: string[], imports?: string[], env?: Record<string, string>, fds?: number } = {}): Promise<ServerHandle> {
  const argv = serverArgv(peer.id, options.nodeArgs ?? [], options.imports ?? [], options.env?.REDIS_PORT)
  const child = spawn('bash', ['-c', options.fds === undefined ? ULIMIT : ulimitFor(options.fds), 'bash', ...argv], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      DOTNET_CLI_TELEMETRY_OPTOUT: '1',
      DOTNET_NOLOGO: '1',
      ASPNETCORE_ENVIRONMENT: 'Production',
      ...peer.env,
      ...options.env
    }
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const handle: ServerHandle = {
    peer,
    pid: child.pid ?? -1,
    httpBase: '',
    exitCode: undefined,
    stderrTail: () => stderr,
    benchLines: [],
    stop: async (graceMs = 6000) => {
      if (handle.exitCode !== undefined) return
      const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
      child.kill('SIGTERM')
      const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])
      if (!done) {
        child.kill('SIGKILL')
        await Promise.race([exited, sleep(2000)])
      }
    }
  }
  child.once('exit', (code, signal) => { handle.exitCode = code ?? (signal === null ? -1 : 128) })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new HarnessError(`${peer.label} did not print "listening" within 60 s`)) }, 60_000)
    lines.on('line', (line) => {
      const m = /listening (http:\/\/\S+)/.exec(line)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1].replace('localhost', '127.0.0.1').replace(/\/$/, ''))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new HarnessError(`${peer.label} exited (code ${code}) before listening:\n${stderr}`))
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new HarnessError(`${peer.label} could not be started: ${err.message}`))
    })
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL')
    throw err
  })
  // Keep draining stdout so the server never blocks on a full pipe
  lines.on('line', (line) => { if (line.startsWith('bench ')) handle.benchLines.push(line) })
  handle.httpBase = url
  return handle
}

// ---------------------------------------------------------------------------------------
// Load-client processes

class ClientProcess {
  readonly child: ChildProcess
  readonly ready: Promise<{ connected: number, failed: number, connectSpan?: [number, number] }>
  readonly result: Promise<RoleResult>
  onProgress: ((doneUpTo: number) => void) | undefined
  private stderr = ''

  constructor (readonly config: ClientConfig, readonly name: string) {
    this.child = spawn('bash', ['-c', ULIMIT, 'bash', process.execPath, '--import', 'tsx', 'bench/load/client.ts', JSON.stringify(config)], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc']
    })
    this.child.stderr?.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000) })
    let readyResolve!: (v: { connected: number, failed: number, connectSpan?: [number, number] }) => void
    let resultResolve!: (v: RoleResult) => void
    let fail!: (e: Error) => void
    const failed = new Promise<never>((_resolve, reject) => { fail = reject })
    failed.catch(() => {})
    this.ready = Promise.race([new Promise<{ connected: number, failed: number, connectSpan?: [number, number] }>((resolve) => { readyResolve = resolve }), failed])
    this.result = Promise.race([new Promise<RoleResult>((resolve) => { resultResolve = resolve }), failed])
    this.ready.catch(() => {})
    this.result.catch(() => {})
    let gotResult = false
    this.child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') readyResolve({ connected: m.connected, failed: m.failed, connectSpan: m.connectSpan })
      else if (m.type === 'progress') this.onProgress?.(m.doneUpTo)
      else if (m.type === 'result') {
        gotResult = true
        resultResolve(m.result)
      }
    })
    this.child.once('exit', (code, signal) => {
      if (!gotResult) fail(new HarnessError(`load client ${name} exited (code ${code}, signal ${signal}) before its result:\n${this.stderr}`))
    })
    this.child.once('error', (err) => { fail(new HarnessError(`load client ${name} could not start: ${err.message}`)) })
  }

  send (m: ParentMessage): void {
    if (this.child.connected) this.child.send(m)
  }

  cpu (): number | undefined {
    return this.child.pid === undefined ? undefined : cpuSeconds(this.child.pid)
  }

  kill (): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

async function bounded<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new HarnessError(`${what} exceeded its bound of ${Math.round(ms / 1000)} s`)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------
// Scenarios

export type ScenarioKind = 'echo' | 'broadcast' | 'idle' | 'connect' | 'broadcast-redis' | 'scale'

export interface ScenarioSpec {
  id: string
  title: string
  kind: ScenarioKind
  transport: Transport
  protocol: Protocol
  /** scale: the idle WebSocket connections one server process holds. */
  connections?: number
}

/** A scale scenario: `n` idle WebSocket connections to one server process, keep-alive Pings running. */
export function scaleScenario (n: number): ScenarioSpec {
  const label = n % 1000 === 0 ? `${n / 1000}k` : String(n)
  return { id: `scale-${label}`, title: `Scale: ${n.toLocaleString('en-US')} idle WebSocket connections in one process, Pings running`, kind: 'scale', transport: 'ws', protocol: 'json', connections: n }
}

export const SCENARIOS: ScenarioSpec[] = [
  { id: 'echo-json', title: 'Echo, WebSockets, JSON', kind: 'echo', transport: 'ws', protocol: 'json' },
  { id: 'echo-msgpack', title: 'Echo, WebSockets, MessagePack', kind: 'echo', transport: 'ws', protocol: 'messagepack' },
  { id: 'broadcast-json', title: 'Broadcast, WebSockets, JSON', kind: 'broadcast', transport: 'ws', protocol: 'json' },
  { id: 'broadcast-msgpack', title: 'Broadcast, WebSockets, MessagePack', kind: 'broadcast', transport: 'ws', protocol: 'messagepack' },
  { id: 'broadcast-10k', title: 'Broadcast to 10,000 receivers, WebSockets, JSON', kind: 'broadcast', transport: 'ws', protocol: 'json', connections: 10_000 },
  { id: 'broadcast-redis', title: 'Broadcast over Redis, 2 server processes, WebSockets, JSON', kind: 'broadcast-redis', transport: 'ws', protocol: 'json' },
  { id: 'idle', title: 'Idle WebSocket connections', kind: 'idle', transport: 'ws', protocol: 'json' },
  { id: 'connect', title: 'Connect rate (negotiate + WebSocket + handshake)', kind: 'connect', transport: 'ws', protocol: 'json' },
  { id: 'lp-echo-json', title: 'Echo, Long Polling, JSON', kind: 'echo', transport: 'lp', protocol: 'json' },
  { id: 'lp-echo-msgpack', title: 'Echo, Long Polling, MessagePack', kind: 'echo', transport: 'lp', protocol: 'messagepack' },
  ...[10_000, 30_000, 100_000].map(scaleScenario)
]

export interface Settings {
  quick: boolean
  warmupMs: number
  graceMs: number
  echo: { connections: number, durationMs: number }
  lp: { connections: number, durationMs: number }
  broadcast: { connections: number, receivers: number, durationMs: number, window: number }
  idle: { connections: number, processes: number, settleMs: number }
  connect: { processes: number, concurrency: number, durationMs: number }
  /** scale: connections per load-client process (each its own source address), the keep-alive, how long delay is sampled. */
  scale: { perProcess: number, keepAliveMs: number, sampleMs: number }
  payloadBytes: number
}

export const FULL: Settings = {
  quick: false,
  warmupMs: 1000,
  graceMs: 2000,
  echo: { connections: 100, durationMs: 10_000 },
  lp: { connections: 100, durationMs: 5000 },
  broadcast: { connections: 1000, receivers: 2, durationMs: 5000, window: 16 },
  idle: { connections: 10_000, processes: 4, settleMs: 2000 },
  connect: { processes: 2, concurrency: 16, durationMs: 5000 },
  scale: { perProcess: 5000, keepAliveMs: 2000, sampleMs: 6000 },
  payloadBytes: 64
}

export const QUICK: Settings = {
  quick: true,
  warmupMs: 200,
  graceMs: 500,
  echo: { connections: 20, durationMs: 1500 },
  lp: { connections: 10, durationMs: 1500 },
  broadcast: { connections: 100, receivers: 1, durationMs: 1500, window: 16 },
  idle: { connections: 300, processes: 2, settleMs: 200 },
  connect: { processes: 1, concurrency: 8, durationMs: 1500 },
  scale: { perProcess: 2500, keepAliveMs: 1000, sampleMs: 2000 },
  payloadBytes: 64
}

export interface Measurement {
  /** Operations per second: invocations, deliveries or connects. */
  rate?: number
  p50Ms?: number
  p99Ms?: number
  kbPerConnection?: number
  serverCpuPct?: number
  /** Server CPU time (all its processes) per delivery, in microseconds. */
  cpuUsPerDelivery?: number
  clientCpuPct?: number
  connected: number
  failedConnects: number
  errorCount: number
  notes: string[]
  /** scale: event-loop delay p99 while only the keep-alive Pings run. */
  loopP99Ms?: number
  /** scale: from the first connect to the last handshake, over every client process, in s. */
  connectAllS?: number
  /** scale: how long the server's own close (app.close()) took with every connection open. */
  closeAllMs?: number
  /** scale: one broadcast to all, from the server's send to its receipt by the last connection. */
  broadcastAllMs?: number
  /** The measurement window, in microseconds of CLOCK_MONOTONIC (the profiler's clock too). */
  window?: { from: number, to: number }
}

/** Hands out 127.0.0.x source addresses, a fresh one per client process. */
export class AddressPool {
  private n = 0
  next (): string {
    const n = this.n++
    return `127.0.${1 + Math.floor(n / 250) % 254}.${2 + (n % 250)}`
  }
}

/** The hard bound on one scenario, from its settings. */
export function scenarioBoundMs (s: ScenarioSpec, st: Settings): number {
  const fixed = 60_000 + st.warmupMs + st.graceMs // connect phase, start-up, teardown
  switch (s.kind) {
    case 'echo': return fixed + (s.transport === 'lp' ? st.lp.durationMs : st.echo.durationMs)
    // broadcast-10k: its connect phase grows with the receivers (a few hundred a second on a loaded machine)
    case 'broadcast':
    case 'broadcast-redis': return fixed + st.broadcast.durationMs + (s.connections ?? 0) * 12
    case 'idle': return fixed + 60_000 + st.idle.settleMs
    case 'connect': return fixed + st.connect.durationMs
    // Connecting at a few thousand a second on a busy machine, then sampling and closing
    case 'scale': return fixed + 240_000 + (s.connections ?? 0) * 3 + st.scale.sampleMs + 130_000
  }
}

function baseConfig (server: ServerHandle, s: ScenarioSpec, st: Settings, role: Role): ClientConfig {
  return {
    role,
    family: server.peer.family,
    transport: s.transport,
    protocol: s.protocol,
    httpBase: server.httpBase,
    hubPath: HUB_PATH,
    connections: 0,
    concurrency: 32,
    localAddress: undefined,
    payloadBytes: st.payloadBytes,
    warmupMs: st.warmupMs,
    graceMs: st.graceMs,
    connectTimeoutMs: 30_000,
    connectPhaseMs: st.quick ? 20_000 : 50_000,
    window: st.broadcast.window
  }
}

function split (total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0))
}

function toMs (micros: number | undefined): number | undefined {
  return micros === undefined ? undefined : micros / 1000
}

/** Runs one scenario against a started server; all client processes are gone when it returns. */
export async function runScenario (server: ServerHandle, s: ScenarioSpec, st: Settings, addresses: AddressPool): Promise<Measurement> {
  const clients: ClientProcess[] = []
  const spawnClient = (config: ClientConfig, name: string): ClientProcess => {
    const c = new ClientProcess(config, `${server.peer.id}/${s.id}/${name}`)
    clients.push(c)
    return c
  }
  try {
    return await bounded(measure(server, s, st, addresses, spawnClient), scenarioBoundMs(s, st), `${s.id} on ${server.peer.label}`)
  } finally {
    for (const c of clients) c.kill()
  }
}

async function measure (server: ServerHandle, s: ScenarioSpec, st: Settings, addresses: AddressPool,
  spawnClient: (c: ClientConfig, name: string) => ClientProcess): Promise<Measurement> {
  if (s.kind === 'scale') return await measureScale(server, s, st, addresses, spawnClient)
  const notes: string[] = []
  const serverGone = (): void => {
    if (server.second?.exitCode !== undefined) throw new HarnessError(`${server.peer.label}'s second process exited during ${s.id}:\n${server.second?.stderrTail() ?? ''}`)
    if (server.exitCode !== undefined) throw new HarnessError(`${server.peer.label} exited (code ${server.exitCode}) during ${s.id}:\n${server.stderrTail()}`)
  }

  let baselineRss: number | undefined
  if (s.kind === 'idle') {
    await sleep(st.idle.settleMs)
    baselineRss = await sampleRss(server.pid, st.quick ? 1 : 3)
  }

  // Spawn every client process for the scenario
  let loaders: ClientProcess[] = []
  let sender: ClientProcess | undefined
  switch (s.kind) {
    case 'echo': {
      const connections = s.transport === 'lp' ? st.lp.connections : st.echo.connections
      loaders = [spawnClient({ ...baseConfig(server, s, st, 'echo'), connections, concurrency: 25 }, 'echo')]
      break
    }
    case 'broadcast':
    case 'broadcast-redis': {
      // Over Redis, receivers are spread over both processes and the sender talks to the first
      const receivers = s.kind === 'broadcast-redis' ? Math.max(2, st.broadcast.receivers) : st.broadcast.receivers
      const target = (i: number): ServerHandle => (s.kind === 'broadcast-redis' && i % 2 === 1 ? server.second ?? server : server)
      loaders = split(s.connections ?? st.broadcast.connections, receivers).map((n, i) =>
        spawnClient({ ...baseConfig(target(i), s, st, 'broadcast-receive'), connections: n, concurrency: 50, connectPhaseMs: baseConfig(server, s, st, 'idle').connectPhaseMs + (s.connections ?? 0) * 10 }, `receiver${i}`))
      sender = spawnClient({ ...baseConfig(server, s, st, 'broadcast-send'), connections: 1, concurrency: 1 }, 'sender')
      break
    }
    case 'idle':
      loaders = split(st.idle.connections, st.idle.processes).map((n, i) =>
        spawnClient({ ...baseConfig(server, s, st, 'idle'), connections: n, concurrency: 50, localAddress: addresses.next() }, `idle${i}`))
      break
    case 'connect':
      loaders = Array.from({ length: st.connect.processes }, (_, i) =>
        spawnClient({ ...baseConfig(server, s, st, 'connect'), concurrency: st.connect.concurrency }, `connect${i}`))
  }
  const everyone = sender === undefined ? loaders : [...loaders, sender]

  const readies = await Promise.all(everyone.map(async (c) => await c.ready))
  serverGone()
  const connected = loaders.reduce((sum, _c, i) => sum + readies[i].connected, 0)
  const failedConnects = readies.reduce((sum, r) => sum + r.failed, 0)
  if (failedConnects > 0) notes.push(`${failedConnects} connects failed`)
  if (sender !== undefined && readies[readies.length - 1].connected === 0) throw new HarnessError(`the broadcast sender could not connect to ${server.peer.label}`)

  if (s.kind === 'idle') {
    await sleep(st.idle.settleMs)
    const loaded = await sampleRss(server.pid, st.quick ? 1 : 3)
    serverGone()
    for (const c of loaders) c.send({ type: 'stop' })
    const results = await Promise.all(loaders.map(async (c) => await c.result))
    const errorCount = results.reduce((sum, r) => sum + (r.errorCount ?? 0), 0)
    for (const r of results) for (const e of r.errors ?? []) if (notes.length < 6) notes.push(e)
    const kbPerConnection = loaded === undefined || baselineRss === undefined || connected === 0 ? undefined : (loaded - baselineRss) / connected
    notes.push(`server RSS ${fmtMb(baselineRss)} → ${fmtMb(loaded)} MB`)
    return { kbPerConnection, connected, failedConnects, errorCount, notes }
  }

  // Broadcast: relay the slowest receiver's progress to the sender
  if (sender !== undefined) {
    const progress = loaders.map(() => 0)
    let relayed = 0
    loaders.forEach((c, i) => {
      c.onProgress = (doneUpTo) => {
        progress[i] = doneUpTo
        const min = Math.min(...progress)
        if (min > relayed) {
          relayed = min
          sender?.send({ type: 'progress', doneUpTo: min })
        }
      }
    })
  }

  const duration = s.kind === 'echo'
    ? (s.transport === 'lp' ? st.lp.durationMs : st.echo.durationMs)
    : s.kind === 'broadcast' || s.kind === 'broadcast-redis' ? st.broadcast.durationMs : st.connect.durationMs
  const measureFrom = nowMicros() + 150_000 + st.warmupMs * 1000
  const endAt = measureFrom + duration * 1000
  for (const c of everyone) c.send({ type: 'go', measureFrom, endAt })

  await sleep((measureFrom - nowMicros()) / 1000)
  // Server CPU is both processes' for broadcast-redis
  const serverCpu = (): number | undefined => {
    const a = cpuSeconds(server.pid)
    const b = server.second === undefined ? 0 : cpuSeconds(server.second.pid)
    return a === undefined || b === undefined ? undefined : a + b
  }
  const cpu0 = serverCpu()
  const clientCpu0 = everyone.map((c) => c.cpu() ?? 0)
  await sleep((endAt - nowMicros()) / 1000)
  const cpu1 = serverCpu()
  const clientCpu1 = everyone.map((c) => c.cpu() ?? 0)
  serverGone()
  const seconds = duration / 1000
  const serverCpuPct = cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / seconds * 100
  const clientCpuPct = clientCpu1.reduce((sum, v, i) => sum + v - clientCpu0[i], 0) / seconds * 100

  const results = await Promise.all(loaders.map(async (c) => await c.result))
  const senderResult = sender === undefined ? undefined : await sender.result
  serverGone()
  const hist = new Histogram()
  let count = 0
  let errorCount = 0
  for (const r of results) {
    count += r.count
    if (r.hist !== undefined) hist.merge(r.hist)
    errorCount += r.errorCount ?? 0
    for (const e of r.errors ?? []) if (notes.length < 6) notes.push(e)
  }
  if (senderResult !== undefined) {
    errorCount += senderResult.errorCount ?? 0
    notes.push(`${senderResult.count} broadcasts sent`)
    if ((senderResult.stalls ?? 0) > 0) notes.push(`${senderResult.stalls} sender stalls (a receiver fell 1 s behind)`)
    for (const e of senderResult.errors ?? []) if (notes.length < 6) notes.push(`sender: ${e}`)
  }
  const windowSeconds = (endAt - measureFrom) / 1e6
  const rate = count / windowSeconds
  return {
    rate,
    cpuUsPerDelivery: serverCpuPct === undefined || rate === 0 ? undefined : serverCpuPct / 100 * 1e6 / rate,
    p50Ms: toMs(hist.quantile(0.5)),
    p99Ms: toMs(hist.quantile(0.99)),
    serverCpuPct,
    clientCpuPct,
    connected,
    failedConnects,
    errorCount,
    notes,
    window: { from: measureFrom, to: endAt }
  }
}

/**
 * `connections` idle WebSocket connections to one server process, spread over load-client
 * processes that each dial from their own 127.0.x.y (one source address has ~28,000
 * ephemeral ports), with the keep-alive Pings running: RSS growth per connection, event-loop
 * delay p99 while only the Pings run, time to connect them all, one broadcast to all and
 * the time until the last one had it, then the server's own close of every connection.
 */
async function measureScale (server: ServerHandle, s: ScenarioSpec, st: Settings, addresses: AddressPool,
  spawnClient: (c: ClientConfig, name: string) => ClientProcess): Promise<Measurement> {
  const notes: string[] = []
  const total = s.connections ?? 0
  const serverGone = (): void => {
    if (server.exitCode !== undefined) throw new HarnessError(`${server.peer.label} exited (code ${server.exitCode}) during ${s.id}:\n${server.stderrTail()}`)
  }
  const probe = async (path: string, method = 'GET'): Promise<Record<string, number>> => {
    const res = await fetch(`${server.httpBase}${path}`, { method, signal: AbortSignal.timeout(60_000) })
    if (!res.ok) throw new HarnessError(`${server.peer.label}: ${path} answered ${res.status}`)
    return await res.json() as Record<string, number>
  }
  await sleep(st.idle.settleMs)
  const baselineRss = await sampleRss(server.pid, 3)
  const processes = Math.ceil(total / st.scale.perProcess)
  const loaders = split(total, processes).map((n, i) => spawnClient({
    ...baseConfig(server, s, st, 'idle'),
    connections: n,
    concurrency: 32,
    localAddress: addresses.next(),
    connectPhaseMs: 240_000 + n * 20
  }, `scale${i}`))
  const readies = await Promise.all(loaders.map(async (c) => await c.ready))
  serverGone()
  const connected = readies.reduce((sum, r) => sum + r.connected, 0)
  const failedConnects = readies.reduce((sum, r) => sum + r.failed, 0)
  if (failedConnects > 0) notes.push(`${failedConnects} connects failed`)
  const spans = readies.map((r) => r.connectSpan).filter((x): x is [number, number] => x !== undefined)
  const connectAllS = spans.length === 0 ? undefined : (Math.max(...spans.map((x) => x[1])) - Math.min(...spans.map((x) => x[0]))) / 1e6
  // Let the connect burst's garbage go, then sample only the Pings' work
  await sleep(Math.max(st.idle.settleMs, st.scale.keepAliveMs))
  await probe('/bench/loop-delay')
  await sleep(st.scale.sampleMs)
  const delay = await probe('/bench/loop-delay')
  const loadedRss = await sampleRss(server.pid, 3)
  serverGone()
  const sent = await probe('/bench/broadcast', 'POST')
  notes.push(`broadcast queued for all in ${(sent.queuedMicros / 1000).toFixed(1)} ms`)
  // Every receipt is timed by its client; give the last ones time to arrive
  await sleep(Math.max(2000, total / 10))
  const closeStarted = Date.now()
  await server.stop(125_000)
  const closedLine = server.benchLines.find((l) => l.startsWith('bench closed-in-ms '))
  const closeAllMs = closedLine === undefined ? undefined : Number(closedLine.split(' ')[2])
  if (closeAllMs === undefined) notes.push(`no close time reported (stopped after ${Date.now() - closeStarted} ms)`)
  for (const c of loaders) c.send({ type: 'stop', serverClosed: true })
  const results = await Promise.all(loaders.map(async (c) => await c.result))
  const hist = new Histogram()
  let errorCount = 0
  for (const r of results) {
    if (r.hist !== undefined) hist.merge(r.hist)
    errorCount += r.errorCount ?? 0
    for (const e of r.errors ?? []) if (notes.length < 6) notes.push(e)
  }
  if (hist.count !== connected) notes.push(`the broadcast reached ${hist.count} of ${connected}`)
  notes.push(`server RSS ${fmtMb(baselineRss)} → ${fmtMb(loadedRss)} MB`, `loop delay p50 ${delay.p50Ms.toFixed(1)} ms, max ${delay.maxMs.toFixed(1)} ms`)
  notes.push(`${processes} client processes`)
  return {
    kbPerConnection: loadedRss === undefined || baselineRss === undefined || connected === 0 ? undefined : (loadedRss - baselineRss) / connected,
    loopP99Ms: delay.p99Ms,
    connectAllS,
    closeAllMs,
    broadcastAllMs: hist.count === 0 ? undefined : hist.max / 1000,
    p50Ms: toMs(hist.quantile(0.5)),
    connected,
    failedConnects,
    errorCount,
    notes
  }
}

function fmtMb (kb: number | undefined): string {
  return kb === undefined ? '?' : (kb / 1024).toFixed(1)
}

// ---------------------------------------------------------------------------------------
// broadcast-redis: one redis-server and two processes of the peer on it

/** Starts redis-server on a free port and two server processes of the peer sharing it. */
export async function startRedisFleet (peer: PeerSpec): Promise<ServerHandle> {
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new HarnessError('redis-server is not installed')
  const port = String(20000 + Math.floor(Math.random() * 20000))
  const redis = spawn('redis-server', ['--port', port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const end = Date.now() + 10_000
  while (spawnSync('redis-cli', ['-p', port, 'ping'], { encoding: 'utf8' }).stdout?.trim() !== 'PONG') {
    if (Date.now() > end) throw new HarnessError('redis-server did not start')
    await sleep(20)
  }
  const stopRedis = (): void => { if (redis.exitCode === null) redis.kill('SIGKILL') }
  try {
    const first = await startServer(peer, { env: { REDIS_PORT: port } })
    const second = await startServer(peer, { env: { REDIS_PORT: port } }).catch(async (err: unknown) => { await first.stop(); throw err })
    const stopFirst = first.stop
    first.second = second
    first.stop = async () => {
      await Promise.all([stopFirst(), second.stop()])
      stopRedis()
    }
    return first
  } catch (err) {
    stopRedis()
    throw err
  }
}
