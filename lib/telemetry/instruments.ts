// Every instrument fastify-signalr reports, created once per plugin instance from one Meter.
// The two standard ones are spelled exactly as the OpenTelemetry semantic conventions spell
// ASP.NET Core's (docs/dotnet/dotnet-signalr-metrics.md); ours share their namespace.
import type { Counter, Histogram, Meter, ObservableCounter, ObservableGauge, UpDownCounter } from '@opentelemetry/api'

/** The advised ExplicitBucketBoundaries of signalr.server.connection.duration. */
export const CONNECTION_DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
/** Invocations are short: the boundaries of http.server.request.duration. */
export const INVOCATION_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export interface Instruments {
  readonly connectionDuration: Histogram
  readonly activeConnections: UpDownCounter
  readonly invocations: ObservableCounter
  readonly invocationDuration: Histogram
  readonly messagesReceived: ObservableCounter
  readonly messagesSent: ObservableCounter
  readonly bytesReceived: ObservableCounter
  readonly bytesSent: ObservableCounter
  readonly outboundWaiting: ObservableGauge
  readonly slowClientCloses: Counter
  readonly handshakeFailures: Counter
  readonly backplanePublishes: Counter
  readonly backplaneFailures: Counter
  readonly backplaneReconnects: Counter
}

export function createInstruments (meter: Meter): Instruments {
  return {
    connectionDuration: meter.createHistogram('signalr.server.connection.duration', {
      unit: 's',
      description: 'The duration of connections on the server.',
      advice: { explicitBucketBoundaries: CONNECTION_DURATION_BUCKETS }
    }),
    activeConnections: meter.createUpDownCounter('signalr.server.active_connections', {
      unit: '{connection}',
      description: 'Number of connections that are currently active on the server.'
    }),
    // Asynchronous: counted in plain integers per method and outcome and read at collection,
    // so that a call costs the SDK one recording (the duration), not two
    invocations: meter.createObservableCounter('signalr.server.invocations', {
      unit: '{invocation}',
      description: 'Hub method invocations that ended, by hub, method and outcome.'
    }),
    invocationDuration: meter.createHistogram('signalr.server.invocation.duration', {
      unit: 's',
      description: 'How long hub method invocations ran, streams included, by hub, method and outcome.',
      advice: { explicitBucketBoundaries: INVOCATION_DURATION_BUCKETS }
    }),
    messagesReceived: meter.createObservableCounter('signalr.server.messages.received', {
      unit: '{message}',
      description: 'Hub protocol messages received from clients after the handshake, by hub and protocol.'
    }),
    messagesSent: meter.createObservableCounter('signalr.server.messages.sent', {
      unit: '{message}',
      description: 'Hub protocol messages handed to transports after the handshake (Pings and replays included), by hub and protocol.'
    }),
    bytesReceived: meter.createObservableCounter('signalr.server.bytes.received', {
      unit: 'By',
      description: 'Bytes of the hub protocol messages received, framing included, by hub and protocol.'
    }),
    bytesSent: meter.createObservableCounter('signalr.server.bytes.sent', {
      unit: 'By',
      description: 'Bytes of the hub protocol messages handed to transports, framing included, by hub and protocol.'
    }),
    outboundWaiting: meter.createObservableGauge('signalr.server.outbound.waiting', {
      unit: 'By',
      description: 'Bytes sent to clients that they have not taken yet (socket buffers, pending polls, stateful-reconnect buffers), by hub.'
    }),
    slowClientCloses: meter.createCounter('signalr.server.slow_client.closes', {
      unit: '{connection}',
      description: 'Connections cut because their client stopped reading, by hub and reason.'
    }),
    handshakeFailures: meter.createCounter('signalr.server.handshake.failures', {
      unit: '{handshake}',
      description: 'Handshakes refused, by hub and reason.'
    }),
    backplanePublishes: meter.createCounter('signalr.server.backplane.publishes', {
      unit: '{message}',
      description: 'Messages a hub published on its backplane, by hub, backplane and channel kind.'
    }),
    backplaneFailures: meter.createCounter('signalr.server.backplane.failures', {
      unit: '{operation}',
      description: 'Backplane publishes, subscribes and commands that failed, by hub, backplane, operation and reason.'
    }),
    backplaneReconnects: meter.createCounter('signalr.server.backplane.reconnects', {
      unit: '{reconnect}',
      description: "Times a hub's backplane connection came back after it had been lost, by hub and backplane."
    })
  }
}
