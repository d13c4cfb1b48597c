// Our echo path in one process, without sockets:
//
//   node --import tsx bench/echo-path.ts [--protocol=json|messagepack] [--otel=metrics|traces|metrics,traces] [--ratio=R] [--calls=200000]
//
// A Connection of a real MappedHub (default options, the bench's Echo hub) on the real
// WebSocket transport over a stand-in socket that only counts what it is given: each call
// is one frame handed to the transport's 'message' handler, parsed, validated, dispatched,
// answered and batched, exactly as under `npm run bench`, minus the kernel and ws's framing,
// which the raw ws floor pays the same. It prints our CPU per call (process.cpuUsage over the
// calls, median of five rounds), so that changes to the path can be compared on a machine
// too busy for the socket benchmark, and the OpenTelemetry SDKs' cost per call without the
// socket noise (--otel, the same SDK setup as bench/servers/fastify-signalr-otel.ts; spans
// with ParentBased(AlwaysOn), or ParentBased(TraceIdRatioBased(R)) with --ratio=R). For
// reference it also times what the floor does per call besides I/O (parse, answer, frame).
import { metrics, trace } from '@opentelemetry/api'
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics'
import {
  AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanExporter
} from '@opentelemetry/sdk-trace-base'
import { decode, encode } from '@msgpack/msgpack'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import Type from 'typebox'
import type { WebSocket } from 'ws'
import { defineHub } from '../index.js'
import { Connection } from '../lib/connection.js'
import { compileHub } from '../lib/hub/define-hub.js'
import { MappedHub } from '../lib/hub/mapped-hub.js'
import { MemoryHubLifetimeManager } from '../lib/lifetime/memory.js'
import { resolveHubOptions, resolvePluginOptions } from '../lib/options.js'
import { messagePackHubProtocol } from '../lib/protocol/msgpack.js'
import { Telemetry } from '../lib/telemetry/telemetry.js'
import { WebSocketTransport } from '../lib/transports/websocket.js'

const args = process.argv.slice(2)
const arg = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const protocol = arg('protocol') ?? 'json'
const calls = Number(arg('calls') ?? 200_000)
const otel = (arg('otel') ?? '').split(',').filter((s) => s !== '')
const ratio = arg('ratio') === undefined ? undefined : Number(arg('ratio'))
const ROUNDS = 5
// Calls between yields to the event loop: what a busy server sees per turn, about
const PER_TURN = 64

const SUCCESS = { code: 0 }
const dropMetrics: PushMetricExporter = { export (_m, done) { done(SUCCESS) }, async forceFlush () {}, async shutdown () {} }
const dropSpans: SpanExporter = { export (_s, done) { done(SUCCESS) }, async shutdown () {} }
if (otel.includes('metrics')) {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: dropMetrics, exportIntervalMillis: 1000 })] }))
}
if (otel.includes('traces')) {
  const root = ratio === undefined ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(ratio)
  trace.setGlobalTracerProvider(new BasicTracerProvider({ sampler: new ParentBasedSampler({ root }), spanProcessors: [new BatchSpanProcessor(dropSpans)] }))
}

const noop = (): void => {}
const log = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop, child: () => log } as unknown as FastifyBaseLogger

const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text }
  }
})
const mapped = new MappedHub({
  path: '/hubs/scenario',
  hub: compileHub(hub),
  options: resolveHubOptions(resolvePluginOptions({}), {}),
  lifetime: new MemoryHubLifetimeManager(),
  log,
  userId: undefined,
  forget: noop,
  telemetry: new Telemetry()
})

/** Takes the transport's writes and counts the Completions in them. */
class CountingSocket {
  readonly OPEN = 1
  readonly CONNECTING = 0
  readyState = 1
  bufferedAmount = 0
  written = 0
  onMessage: ((data: Buffer) => void) | undefined
  on (event: string, fn: (data: Buffer) => void): this {
    if (event === 'message') this.onMessage = fn
    return this
  }

  once (): this { return this }
  send (data: Buffer): void { this.written += data.length }
  pause (): void {}
  resume (): void {}
  terminate (): void {}
  close (): void {}
}

const payload = 'fastify-signalr bench payload 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ '.slice(0, 64)
// Frames as the load client sends them, ids counting up (a thousand, reused in turn)
const frames = Array.from({ length: 1000 }, (_, i) => protocol === 'json'
  ? Buffer.from(`{"type":1,"invocationId":"${i + 1}","target":"Echo","arguments":[${JSON.stringify(payload)}]}\u001e`)
  : messagePackHubProtocol.write({ type: 1, invocationId: String(i + 1), target: 'Echo', arguments: [payload] }))

async function turn (): Promise<void> {
  await new Promise((resolve) => { setImmediate(resolve) })
}

const socket = new CountingSocket()
const connection = new Connection(mapped, { connectionId: 'bench', token: 'bench', negotiateVersion: 1 })
connection.claim('WebSockets')
connection.attach(new WebSocketTransport(socket as unknown as WebSocket, connection), { log } as unknown as FastifyRequest)
const deliver = socket.onMessage as (data: Buffer) => void
deliver(Buffer.from(`{"protocol":"${protocol}","version":1}\u001e`))
await turn()
if (connection.state !== 'connected') throw new Error(`the handshake failed: ${connection.state}`)

async function ours (n: number): Promise<number> {
  const before = socket.written
  const t0 = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    deliver(frames[i % frames.length])
    if (i % PER_TURN === PER_TURN - 1) await turn()
  }
  await turn()
  const t = process.cpuUsage(t0)
  if (socket.written - before < n * 10) throw new Error('the Completions did not all come back')
  return (t.user + t.system) / n
}

/** What the floor (bench/servers/ws.ts) does per call besides ws and the socket. */
async function floor (n: number): Promise<number> {
  let sink = 0
  const t0 = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const data = frames[i % frames.length]
    if (protocol === 'json') {
      const m = JSON.parse(data.toString('utf8', 0, data.length - 1)) as { invocationId: string, arguments: unknown[] }
      sink += Buffer.from(JSON.stringify({ type: 3, invocationId: m.invocationId, result: m.arguments[0] }) + '\u001e').length
    } else {
      const m = decode(data.subarray(1)) as unknown[]
      const body = encode([3, {}, m[2], 3, (m[4] as unknown[])[0]])
      const out = Buffer.allocUnsafe(body.length + 1)
      out[0] = body.length
      out.set(body, 1)
      sink += out.length
    }
    if (i % PER_TURN === PER_TURN - 1) await turn()
  }
  await turn()
  const t = process.cpuUsage(t0)
  if (sink === 0) throw new Error('unreachable')
  return (t.user + t.system) / n
}

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
}

// Warm-up: the JIT settles before anything is timed
await ours(calls / 4)
await floor(calls / 4)
const oursUs: number[] = []
const floorUs: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  oursUs.push(await ours(calls))
  floorUs.push(await floor(calls))
}
const sampler = otel.includes('traces') ? (ratio === undefined ? ', traces always on' : `, traces sampled at ${ratio}`) : ''
const setup = otel.length === 0 ? 'no OpenTelemetry SDK' : `OpenTelemetry SDK: ${otel.join(' + ')}${sampler}`
console.log(`echo path, ${protocol}, ${setup}: ours ${median(oursUs).toFixed(2)} µs per call (rounds ${oursUs.map((x) => x.toFixed(2)).join(' ')}); ` +
  `the floor's codec work ${median(floorUs).toFixed(2)} µs; ${calls} calls per round, ${PER_TURN} per turn`)
connection.close()
process.exit(0)
