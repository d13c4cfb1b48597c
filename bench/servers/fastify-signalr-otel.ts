// Our benchmark server with OpenTelemetry SDKs on, as OTEL_BENCH_SIGNALS says: `metrics` (every
// instrument read once a second), `traces` (every invocation span batched), or both (the
// default). OTEL_BENCH_SAMPLER is `always_on` (the default) or `ratio:R`. Exporters drop what
// they get, so the figures are what the SDKs cost, not what an exporter's network costs.
import { metrics, trace } from '@opentelemetry/api'
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics'
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, TraceIdRatioBasedSampler, type Sampler, type SpanExporter } from '@opentelemetry/sdk-trace-base'

const SUCCESS = { code: 0 }
const dropMetrics: PushMetricExporter = { export (_m, done) { done(SUCCESS) }, async forceFlush () {}, async shutdown () {} }
const dropSpans: SpanExporter = { export (_s, done) { done(SUCCESS) }, async shutdown () {} }

const signals = new Set((process.env.OTEL_BENCH_SIGNALS ?? 'metrics,traces').split(',').map((s) => s.trim()))
for (const s of signals) if (s !== 'metrics' && s !== 'traces') throw new Error(`OTEL_BENCH_SIGNALS: unknown signal '${s}'`)

function sampler (spec: string): Sampler {
  if (spec === 'always_on') return new AlwaysOnSampler()
  const ratio = /^ratio:(0(?:\.\d+)?|1(?:\.0+)?)$/.exec(spec)
  if (ratio !== null) return new TraceIdRatioBasedSampler(Number(ratio[1]))
  throw new Error(`OTEL_BENCH_SAMPLER: '${spec}' is neither always_on nor ratio:R`)
}

if (signals.has('metrics')) {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: dropMetrics, exportIntervalMillis: 1000 })] }))
}
if (signals.has('traces')) {
  trace.setGlobalTracerProvider(new BasicTracerProvider({
    sampler: sampler(process.env.OTEL_BENCH_SAMPLER ?? 'always_on'),
    spanProcessors: [new BatchSpanProcessor(dropSpans)]
  }))
}

// The plugin takes the global providers when it is registered: the server comes after them
await import('./fastify-signalr.js')
