// Our benchmark server with the OpenTelemetry SDK on: every instrument read once a second,
// every invocation span recorded (always-on sampling) and batched to an exporter that drops
// them, so the figures are what the SDK costs, not what an exporter's network costs.
import { metrics, trace } from '@opentelemetry/api'
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'

const SUCCESS = { code: 0 }
const dropMetrics: PushMetricExporter = { export (_m, done) { done(SUCCESS) }, async forceFlush () {}, async shutdown () {} }
const dropSpans: SpanExporter = { export (_s, done) { done(SUCCESS) }, async shutdown () {} }

metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: dropMetrics, exportIntervalMillis: 1000 })] }))
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropSpans)] }))

// The plugin takes the global providers when it is registered: the server comes after them
await import('./fastify-signalr.js')
