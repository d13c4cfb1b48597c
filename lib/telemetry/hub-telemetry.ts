// What one mapped hub reports: its connections' open and close (metrics and the two log
// lines), handshake failures, traffic by protocol, and invocations. Connection and
// dispatcher call these few methods and nothing else of OpenTelemetry.
import { context, trace, type Attributes, type Context } from '@opentelemetry/api'
import type { Connection } from '../connection.js'
import { OutboundBufferFullError, SendTimeoutError } from '../errors.js'
import { closeStatus, TRANSPORT_NAMES } from './close-status.js'
import { Invocation, MethodTelemetry, UNOBSERVED, type InvocationKind, type InvocationOutcome, type ObservedInvocation } from './invocation.js'
import type { ObservedHub, Telemetry } from './telemetry.js'

/** Hub protocol traffic of one protocol on one hub: plain counters, read at collection time. */
export class Traffic {
  messagesReceived = 0
  messagesSent = 0
  bytesReceived = 0
  bytesSent = 0
  constructor (readonly attributes: Attributes) {}
}

const OUTCOMES: readonly InvocationOutcome[] = ['ok', 'error', 'unauthorized', 'cancelled']

export type HandshakeFailure = 'invalid' | 'unsupported_protocol' | 'unsupported_version' | 'unsupported_transfer_format' | 'timeout' | 'refused'

interface Bound {
  readonly at: number
  /** The context active when the transport request bound the connection: invocation spans' parent. */
  readonly context: Context
  /** That context holds a span (a propagated trace): invocation spans must nest under it even without an SDK here. */
  readonly parentSpan: boolean
  readonly transport: Attributes
  handshakeFailure?: HandshakeFailure
}

export class HubTelemetry implements ObservedHub {
  readonly attributes: Attributes
  private readonly traffic = new Map<string, Traffic>()
  private readonly bound = new Map<Connection, Bound>()
  // Attribute sets are few and made once: recording never builds an object per event
  private readonly attributeCache = new Map<string, Attributes>()
  private readonly methods = new Map<string, MethodTelemetry>()

  constructor (readonly telemetry: Telemetry, readonly path: string, protocols: Iterable<string>) {
    this.attributes = { 'signalr.hub': path }
    for (const p of protocols) this.traffic.set(p, new Traffic({ 'signalr.hub': path, 'signalr.protocol': p }))
    telemetry.observe(this)
  }

  /** Counters for a protocol this hub speaks (the handshake has chosen it). */
  trafficFor (protocol: string): Traffic | undefined {
    return this.traffic.get(protocol)
  }

  observeTraffic (report: Parameters<ObservedHub['observeTraffic']>[0]): void {
    for (const t of this.traffic.values()) {
      report('messagesReceived', t.messagesReceived, t.attributes)
      report('messagesSent', t.messagesSent, t.attributes)
      report('bytesReceived', t.bytesReceived, t.attributes)
      report('bytesSent', t.bytesSent, t.attributes)
    }
  }

  /** Messages received and sent over every protocol, since the hub was mapped (the admin view's rate). */
  messageTotals (): { messagesReceived: number, messagesSent: number } {
    let messagesReceived = 0
    let messagesSent = 0
    for (const t of this.traffic.values()) {
      messagesReceived += t.messagesReceived
      messagesSent += t.messagesSent
    }
    return { messagesReceived, messagesSent }
  }

  observeInvocations (report: Parameters<ObservedHub['observeInvocations']>[0]): void {
    for (const m of this.methods.values()) {
      for (const outcome of OUTCOMES) if (m.counts[outcome] > 0) report(m.counts[outcome], m.outcomes[outcome])
    }
  }

  get outboundWaiting (): number {
    let sum = 0
    for (const c of this.bound.keys()) sum += c.bytesWaiting
    return sum
  }

  private cached (key: string, make: () => Attributes): Attributes {
    let a = this.attributeCache.get(key)
    if (a === undefined) {
      a = make()
      this.attributeCache.set(key, a)
    }
    return a
  }

  /** A transport request bound the connection: from now on it counts as active. */
  transportBound (connection: Connection): void {
    if (this.bound.has(connection) || connection.transportKind === undefined) return
    const name = TRANSPORT_NAMES[connection.transportKind]
    const transport = this.cached(`t:${name}`, () => ({ 'signalr.transport': name }))
    const active = context.active()
    this.bound.set(connection, { at: performance.now(), context: active, parentSpan: trace.getSpan(active) !== undefined, transport })
    this.telemetry.instruments.activeConnections.add(1, transport)
  }

  handshakeFailed (connection: Connection, reason: HandshakeFailure): void {
    const b = this.bound.get(connection)
    if (b !== undefined) b.handshakeFailure = reason
    this.telemetry.instruments.handshakeFailures.add(1, this.cached(`h:${reason}`, () => ({ 'signalr.hub': this.path, 'error.type': reason })))
  }

  /** The handshake succeeded and the user is known: the connection's open line. */
  connectionOpened (connection: Connection): void {
    connection.logTagged('info', { transport: connection.transportKind, protocol: connection.protocol?.name, user: connection.userId }, 'signalr: connection opened')
  }

  /** Once, when the connection is gone, whether or not its handshake had succeeded. */
  connectionClosed (connection: Connection, error: Error | undefined, established: boolean): void {
    const b = this.bound.get(connection)
    if (b === undefined) return
    this.bound.delete(connection)
    const i = this.telemetry.instruments
    const seconds = (performance.now() - b.at) / 1000
    const status = closeStatus(error, this.telemetry.shuttingDown, b.handshakeFailure === 'timeout')
    const name = b.transport['signalr.transport'] as string
    i.activeConnections.add(-1, b.transport)
    i.connectionDuration.record(seconds, this.cached(`d:${name}:${status}`, () => ({ 'signalr.connection.status': status, 'signalr.transport': name })))
    const slow = error instanceof OutboundBufferFullError ? 'buffer_full' : error instanceof SendTimeoutError ? 'send_timeout' : undefined
    if (slow !== undefined) i.slowClientCloses.add(1, this.cached(`s:${slow}`, () => ({ 'signalr.hub': this.path, 'error.type': slow })))
    if (!established) return
    connection.logTagged('info', {
      transport: connection.transportKind,
      protocol: connection.protocol?.name,
      user: connection.userId,
      durationMs: Math.round(seconds * 1000),
      status,
      reason: error === undefined ? undefined : ((error as { code?: string }).code ?? error.name) + ': ' + error.message
    }, 'signalr: connection closed')
  }

  /**
   * A hub method call (or stream) begins: its span and its timer, each only when something
   * records it. With no SDK at all this allocates nothing.
   */
  startInvocation (connection: Connection, method: string, kind: InvocationKind): ObservedInvocation {
    const t = this.telemetry
    const b = this.bound.get(connection)
    const parent = b?.context ?? context.active()
    // Without an SDK a span is worth making only to carry a propagated parent to the handler
    const traced = t.tracing || (b === undefined ? trace.getSpan(parent) !== undefined : b.parentSpan)
    if (!traced && !t.metricsOn) return UNOBSERVED
    return new Invocation(t, this.methodTelemetry(method), kind, traced ? parent : undefined)
  }

  /** Bounded by the hub's method names: the dispatcher starts invocations of declared methods only. */
  private methodTelemetry (method: string): MethodTelemetry {
    let m = this.methods.get(method)
    if (m === undefined) {
      m = new MethodTelemetry(this.path, method)
      this.methods.set(method, m)
    }
    return m
  }
}
