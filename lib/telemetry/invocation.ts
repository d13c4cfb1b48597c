// One hub method invocation as observed: a SERVER span named and attributed as ASP.NET
// Core 9 names its hub invocation activities (rpc.system = signalr), whose parent is the
// context of the request that opened the connection, and the invocation metrics. Without an
// SDK nothing of this runs: the dispatcher gets UNOBSERVED and calls the handler directly.
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanOptions } from '@opentelemetry/api'
import type { Telemetry } from './telemetry.js'

export type InvocationKind = 'invocation' | 'stream'
/** How an invocation ended; a bounded set, used as a metric attribute. */
export type InvocationOutcome = 'ok' | 'error' | 'unauthorized' | 'cancelled'

/** What the dispatcher holds while a call runs. */
export interface ObservedInvocation {
  /** Whether the handler must run inside a span's context (run()); when false it may be called directly. */
  readonly traced: boolean
  /** Runs fn inside the invocation's span, so that what it does nests under it. */
  run: <T>(fn: () => T) => T
  /** Once; later calls do nothing. */
  end: (outcome: InvocationOutcome, error?: unknown) => void
}

/** Nothing records: no span, no metric, no clock reading. */
export const UNOBSERVED: ObservedInvocation = Object.freeze({
  traced: false,
  run: <T>(fn: () => T): T => fn(),
  end: (): void => {}
})

/**
 * A method's span name, span options and metric attribute sets, made once per method of a
 * mapped hub: starting and ending an invocation builds no string and no attribute object.
 */
export class MethodTelemetry {
  readonly spanName: string
  readonly spanOptions: Readonly<Record<InvocationKind, SpanOptions>>
  readonly outcomes: Readonly<Record<InvocationOutcome, Attributes>>
  /** Invocations that ended, by outcome: signalr.server.invocations reads them at collection. */
  readonly counts: Record<InvocationOutcome, number> = { ok: 0, error: 0, unauthorized: 0, cancelled: 0 }

  constructor (hub: string, method: string) {
    this.spanName = `${hub}/${method}`
    const span = (kind: InvocationKind): SpanOptions => ({
      kind: SpanKind.SERVER,
      attributes: { 'rpc.system': 'signalr', 'rpc.service': hub, 'rpc.method': method, 'signalr.invocation.kind': kind }
    })
    this.spanOptions = { invocation: span('invocation'), stream: span('stream') }
    const metric = (outcome: InvocationOutcome): Attributes => ({ 'signalr.hub': hub, 'signalr.method': method, 'signalr.invocation.outcome': outcome })
    this.outcomes = { ok: metric('ok'), error: metric('error'), unauthorized: metric('unauthorized'), cancelled: metric('cancelled') }
  }
}

export class Invocation implements ObservedInvocation {
  readonly traced: boolean
  private readonly span: Span | undefined
  private readonly spanContext: Context | undefined
  private readonly startedAt: number
  private ended = false

  /** `parent` is undefined when no span is to be made (metrics only). */
  constructor (private readonly telemetry: Telemetry, private readonly names: MethodTelemetry, kind: InvocationKind, parent: Context | undefined) {
    if (parent !== undefined) {
      this.span = telemetry.tracer.startSpan(names.spanName, names.spanOptions[kind], parent)
      this.spanContext = trace.setSpan(parent, this.span)
    }
    this.traced = this.spanContext !== undefined
    this.startedAt = telemetry.metricsOn ? performance.now() : 0
  }

  run<T> (fn: () => T): T {
    return this.spanContext === undefined ? fn() : context.with(this.spanContext, fn)
  }

  end (outcome: InvocationOutcome, error?: unknown): void {
    if (this.ended) return
    this.ended = true
    if (this.telemetry.metricsOn) {
      this.names.counts[outcome]++
      this.telemetry.instruments.invocationDuration.record((performance.now() - this.startedAt) / 1000, this.names.outcomes[outcome])
    }
    const span = this.span
    if (span === undefined) return
    if (outcome === 'error' || outcome === 'unauthorized') {
      const e = error instanceof Error ? error : undefined
      if (e !== undefined) span.recordException(e)
      span.setAttribute('error.type', outcome === 'unauthorized' ? 'unauthorized' : (e as { code?: string } | undefined)?.code ?? e?.name ?? 'error')
      span.setStatus({ code: SpanStatusCode.ERROR, message: e?.message })
    }
    span.end()
  }
}
