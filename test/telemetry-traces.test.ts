// Invocation spans as the OpenTelemetry SDK records them: one SERVER span per hub method call
// with ASP.NET Core 9's RPC attributes, one per stream covering the whole stream, errors
// recorded; and, with @fastify/otel, nested under the span of the request that opened the
// connection.
import { context, ProxyTracer, ProxyTracerProvider, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import type { FastifyPluginCallback } from 'fastify'
import { test } from 'tap'
import { connect, VALID_MATRIX } from './fixtures/client.js'
import { memorySpans } from './fixtures/otel.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

const PATH = '/hubs/scenario'

for (const [transport, protocol] of VALID_MATRIX) {
  test(`one span per invocation over ${transport} / ${protocol}`, async (t) => {
    const { tracerProvider, exporter } = memorySpans()
    const { url } = await startServer(t, { plugin: { telemetry: { tracerProvider } } })
    const client = await connect(t, url, { transport, protocol })
    t.equal(await client.invoke('Echo', 'a'), 'a')
    await t.rejects(client.invoke('Fail'))
    const started = Date.now()
    await new Promise<void>((resolve, reject) => {
      client.stream('Counter', 3, 30).subscribe({ next () {}, complete: resolve, error: reject })
    })
    const streamMs = Date.now() - started
    await until(() => exporter.getFinishedSpans().length === 3)
    const [echo, fail, counter] = exporter.getFinishedSpans()
    t.equal(echo.name, `${PATH}/Echo`)
    t.equal(echo.kind, SpanKind.SERVER)
    t.same(echo.attributes, { 'rpc.system': 'signalr', 'rpc.service': PATH, 'rpc.method': 'Echo', 'signalr.invocation.kind': 'invocation' })
    t.equal(echo.status.code, SpanStatusCode.UNSET)
    t.equal(fail.name, `${PATH}/Fail`)
    t.equal(fail.status.code, SpanStatusCode.ERROR)
    t.equal(fail.status.message, 'secret detail')
    t.equal(fail.attributes['error.type'], 'Error')
    t.equal(fail.events.filter((e) => e.name === 'exception').length, 1, 'the exception is recorded')
    t.equal(counter.name, `${PATH}/Counter`)
    t.equal(counter.attributes['signalr.invocation.kind'], 'stream')
    // Three items 30 ms apart: the span lasts (at least) the two waits between them
    const spanMs = counter.duration[0] * 1000 + counter.duration[1] / 1e6
    t.ok(spanMs >= 55 && spanMs <= streamMs + 50, `the stream span covers the stream (${spanMs.toFixed(1)} ms of ${streamMs} ms)`)
  })
}

test('a cancelled stream ends its span without an error', async (t) => {
  const { tracerProvider, exporter } = memorySpans()
  const { url } = await startServer(t, { plugin: { telemetry: { tracerProvider } } })
  const client = await connect(t, url, { transport: 'WebSockets' })
  let first!: () => void
  const got = new Promise<void>((resolve) => { first = resolve })
  const sub = client.stream('Counter', 1000, 20).subscribe({ next () { first() }, complete () {}, error () {} })
  await got
  sub.dispose()
  await until(() => exporter.getFinishedSpans().length === 1)
  t.equal(exporter.getFinishedSpans()[0].status.code, SpanStatusCode.UNSET)
})

test('no SDK behind the provider: no span is started; one set behind it later gets every call', async (t) => {
  // The global provider is such a proxy: an SDK may be registered after the plugin
  const provider = new ProxyTracerProvider()
  let starts = 0
  const startSpan = ProxyTracer.prototype.startSpan
  ProxyTracer.prototype.startSpan = function (...args) {
    starts++
    return startSpan.apply(this, args)
  }
  t.teardown(() => { ProxyTracer.prototype.startSpan = startSpan })
  const { url } = await startServer(t, { plugin: { telemetry: { tracerProvider: provider } } })
  const client = await connect(t, url, { transport: 'WebSockets' })
  t.equal(await client.invoke('Echo', 'a'), 'a')
  await t.rejects(client.invoke('Fail'))
  t.equal(starts, 0, 'calls without an SDK start no span, not even a no-op one')

  const { tracerProvider, exporter } = memorySpans()
  provider.setDelegate(tracerProvider)
  t.equal(await client.invoke('Echo', 'b'), 'b')
  await until(() => exporter.getFinishedSpans().length === 1)
  t.equal(exporter.getFinishedSpans()[0].name, `${PATH}/Echo`, 'the SDK set later records the next call')
  t.ok(starts >= 1, 'through the tracer the plugin was given')
})

test('with @fastify/otel, invocation spans nest under the connection request', async (t) => {
  const manager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(manager)
  t.teardown(() => { context.disable() })
  // Loaded by a computed name: its types augment Fastify's route config, which would change
  // how every other test file type-checks
  const name = '@fastify/otel'
  const { FastifyOtelInstrumentation } = await import(name) as {
    FastifyOtelInstrumentation: new (o: { registerOnInitialization: boolean }) => {
      setTracerProvider (p: unknown): void
      plugin (): FastifyPluginCallback
    }
  }
  const { tracerProvider, exporter, started } = memorySpans()
  const otel = new FastifyOtelInstrumentation({ registerOnInitialization: false })
  otel.setTracerProvider(tracerProvider)
  for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const) {
    exporter.reset()
    started.length = 0
    const { url, app } = await startServer(t, {
      plugin: { telemetry: { tracerProvider } },
      setup: async (app) => { await app.register(otel.plugin()) }
    })
    const client = await connect(t, url, { transport })
    t.equal(await client.invoke('Echo', 'nested'), 'nested')
    await client.stop()
    await app.close()
    const spans = started
    const echo = spans.find((s) => s.name === `${PATH}/Echo`)
    t.ok(echo, `${transport}: an Echo span`)
    const parentId = echo?.parentSpanContext?.spanId
    const parent = spans.find((s) => s.spanContext().spanId === parentId)
    t.ok(parent !== undefined, `${transport}: its parent is a @fastify/otel span (${spans.map((s) => s.name).join(', ')})`)
    t.equal(parent?.spanContext().traceId, echo?.spanContext().traceId, `${transport}: one trace`)
    // The parent chain reaches the request that opened the connection (the transport GET)
    let root = parent
    while (root?.parentSpanContext !== undefined) {
      const id = root.parentSpanContext.spanId
      root = spans.find((s) => s.spanContext().spanId === id)
    }
    t.equal(root?.attributes['http.request.method'], 'GET', `${transport}: rooted in the transport request`)
    t.ok(exporter.getFinishedSpans().some((s) => s === echo), `${transport}: the Echo span was exported`)
  }
  t.equal(trace.getActiveSpan(), undefined)
})
