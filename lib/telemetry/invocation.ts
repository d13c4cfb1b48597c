// One hub method invocation as observed: a SERVER span named and attributed as ASP.NET
// Core 9 names its hub invocation activities (rpc.system = signalr), whose parent is the
// context of the request that opened the connection, and the invocation metrics.
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import type { HubTelemetry } from './hub-telemetry.js'

export type InvocationKind = 'invocation' | 'stream'
/** How an invocation ended; a bounded set, used as a metric attribute. */
export type InvocationOutcome = 'ok' | 'error' | 'unauthorized' | 'cancelled'

export class Invocation {
  private readonly span: Span
  private readonly spanContext: Context
  private readonly startedAt = performance.now()
  private ended = false

  constructor (private readonly hub: HubTelemetry, parent: Context, private readonly method: string, kind: InvocationKind) {
    this.span = hub.telemetry.tracer.startSpan(`${hub.path}/${method}`, {
      kind: SpanKind.SERVER,
      attributes: { 'rpc.system': 'signalr', 'rpc.service': hub.path, 'rpc.method': method, 'signalr.invocation.kind': kind }
    }, parent)
    this.spanContext = trace.setSpan(parent, this.span)
  }

  /** Runs the handler inside the invocation's span, so that what it does nests under it. */
  run<T> (fn: () => T): T {
    return context.with(this.spanContext, fn)
  }

  end (outcome: InvocationOutcome, error?: unknown): void {
    if (this.ended) return
    this.ended = true
    const i = this.hub.telemetry.instruments
    const attributes = this.hub.invocationAttributes(this.method, outcome)
    i.invocations.add(1, attributes)
    i.invocationDuration.record((performance.now() - this.startedAt) / 1000, attributes)
    if (outcome === 'error' || outcome === 'unauthorized') {
      const e = error instanceof Error ? error : undefined
      if (e !== undefined) this.span.recordException(e)
      this.span.setAttribute('error.type', outcome === 'unauthorized' ? 'unauthorized' : (e as { code?: string } | undefined)?.code ?? e?.name ?? 'error')
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: e?.message })
    }
    this.span.end()
  }
}
