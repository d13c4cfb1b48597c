// The runner <-> load-client contract: the config a client process starts with and the
// IPC messages both ways.
import type { HistogramJson } from './histogram.js'
import type { Family, Protocol, Transport } from './wire.js'

export type Role = 'echo' | 'broadcast-receive' | 'broadcast-send' | 'idle' | 'connect'

export interface ClientConfig {
  role: Role
  family: Family
  transport: Transport
  protocol: Protocol
  httpBase: string
  hubPath: string
  /** Connections to hold (echo, broadcast, idle). */
  connections: number
  /** Connects in flight at once (every role), or cycles in flight (connect). */
  concurrency: number
  localAddress: string | undefined
  payloadBytes: number
  warmupMs: number
  graceMs: number
  connectTimeoutMs: number
  /** Bound on the whole connect phase. */
  connectPhaseMs: number
  /** Broadcasts not yet received everywhere (broadcast-send). */
  window: number
}

export interface RoleResult {
  /** Completed operations inside the window (echo round trips, deliveries, connects, broadcasts sent). */
  count: number
  windowMicros: number
  hist?: HistogramJson
  stalls?: number
  errors?: string[]
  errorCount?: number
}

export type ChildMessage =
  /** connectSpan: when the connect phase began and ended (idle), in µs of CLOCK_MONOTONIC. */
  | { type: 'ready', connected: number, failed: number, connectSpan?: [number, number] }
  | { type: 'progress', doneUpTo: number }
  | { type: 'result', result: RoleResult }

export type ParentMessage =
  | { type: 'go', measureFrom: number, endAt: number }
  | { type: 'progress', doneUpTo: number }
  /** serverClosed: the server has closed the connections (scale), so their ends are no error. */
  | { type: 'stop', serverClosed?: boolean }
