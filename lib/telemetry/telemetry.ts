// The plugin instance's observer: one Meter and one Tracer, the instruments, and the hubs
// whose counts the asynchronous instruments read at collection time. Without an
// OpenTelemetry SDK nothing per message reaches the API at all: the per-message work is a
// few integer additions on plain objects, and an invocation is a direct handler call.
import {
  createNoopMeter, metrics, ProxyTracerProvider, trace, type Attributes, type MeterProvider, type TracerProvider, type Tracer
} from '@opentelemetry/api'
import { createInstruments, type Instruments } from './instruments.js'

export const INSTRUMENTATION_SCOPE = 'fastify-signalr'

export interface TelemetryOptions {
  /** Where metrics go; the global MeterProvider when absent (read when the plugin is registered). */
  meterProvider?: MeterProvider
  /** Where spans go; the global TracerProvider when absent (a proxy: an SDK registered later still counts). */
  tracerProvider?: TracerProvider
}

/** What the asynchronous instruments read from each hub. */
export interface ObservedHub {
  observeTraffic (report: (kind: 'messagesReceived' | 'messagesSent' | 'bytesReceived' | 'bytesSent', value: number, attributes: Attributes) => void): void
  /** Invocations that ended, by method and outcome (only those that happened). */
  observeInvocations (report: (value: number, attributes: Attributes) => void): void
  readonly outboundWaiting: number
  readonly attributes: Attributes
}

// What the API's no-op meter hands out (one shared object per instrument kind)
const NOOP_HISTOGRAM = createNoopMeter().createHistogram('')

export class Telemetry {
  readonly instruments: Instruments
  readonly tracer: Tracer
  /**
   * Whether the instruments record anything. The meter provider is read once, at register
   * (the metrics API has no proxy), so a no-op meter then means no metric ever.
   */
  readonly metricsOn: boolean
  /** Set by the plugin's preClose: connections that end from now on end with app_shutdown. */
  shuttingDown = false
  private readonly hubs: ObservedHub[] = []
  private readonly tracerProvider: TracerProvider
  /** Set once the tracer provider is known to have an SDK behind it. */
  private sdkTracing = false

  constructor (options: TelemetryOptions = {}) {
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE)
    this.tracerProvider = options.tracerProvider ?? trace.getTracerProvider()
    this.tracer = this.tracerProvider.getTracer(INSTRUMENTATION_SCOPE)
    this.instruments = createInstruments(meter)
    this.metricsOn = !(this.instruments.invocationDuration instanceof NOOP_HISTOGRAM.constructor)
    const i = this.instruments
    // One batch callback for every hub: collection walks the hubs once
    meter.addBatchObservableCallback((result) => {
      for (const hub of this.hubs) {
        hub.observeTraffic((kind, value, attributes) => { result.observe(i[kind], value, attributes) })
        hub.observeInvocations((value, attributes) => { result.observe(i.invocations, value, attributes) })
        result.observe(i.outboundWaiting, hub.outboundWaiting, hub.attributes)
      }
    }, [i.messagesReceived, i.messagesSent, i.bytesReceived, i.bytesSent, i.invocations, i.outboundWaiting])
  }

  /**
   * Whether spans are recorded. The global provider is a proxy that an SDK may be
   * registered into after the plugin: until one is, its tracer is the API's no-op and a span
   * would be an object made and dropped for nothing. Once an SDK is seen this is a field read.
   */
  get tracing (): boolean {
    if (this.sdkTracing) return true
    const p = this.tracerProvider
    if (p instanceof ProxyTracerProvider && p.getDelegateTracer(INSTRUMENTATION_SCOPE) === undefined) return false
    this.sdkTracing = true
    return true
  }

  observe (hub: ObservedHub): void {
    this.hubs.push(hub)
  }
}

/** Checks the `telemetry` plugin option; returns an error text, or undefined when it is fine. */
export function telemetryOptionProblem (value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) return 'must be an object with meterProvider and/or tracerProvider'
  const o = value as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'meterProvider' && k !== 'tracerProvider') return `has an unknown key '${k}'`
  if (o.meterProvider !== undefined && typeof (o.meterProvider as MeterProvider).getMeter !== 'function') return 'meterProvider must have getMeter()'
  if (o.tracerProvider !== undefined && typeof (o.tracerProvider as TracerProvider).getTracer !== 'function') return 'tracerProvider must have getTracer()'
  return undefined
}
