// hubContext.snapshot(): what one server reports about its own connections of a hub, the
// schema a report from another server of the fleet must pass, and the merge of the reports.
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidArgumentError } from '../errors.js'
import type { ConnectionInfo, HubSnapshot, SnapshotOptions } from '../../types/index.js'

export const SNAPSHOT_DEFAULT_LIMIT = 100
export const SNAPSHOT_MAX_LIMIT = 1000
/** Groups listed per connection: an application may put one connection in thousands. */
export const SNAPSHOT_GROUPS_PER_CONNECTION = 100

const Limit = Compile(Type.Integer({ minimum: 0, maximum: SNAPSHOT_MAX_LIMIT }))

export function snapshotLimit (options: SnapshotOptions | undefined): number {
  const limit = options?.limit ?? SNAPSHOT_DEFAULT_LIMIT
  if (!Limit.Check(limit)) throw new InvalidArgumentError('snapshot limit', `${JSON.stringify(limit) ?? String(limit)} must be an integer from 0 to ${SNAPSHOT_MAX_LIMIT}`)
  return limit
}

const Count = Type.Integer({ minimum: 0 })
const ConnectionInfoSchema = Type.Object({
  connectionId: Type.String({ minLength: 1, maxLength: 1024 }),
  userId: Type.Union([Type.String({ maxLength: 1024 }), Type.Null()]),
  transport: Type.Union([Type.Literal('WebSockets'), Type.Literal('ServerSentEvents'), Type.Literal('LongPolling')]),
  protocol: Type.String({ maxLength: 64 }),
  connectedAt: Count,
  bytesWaiting: Count,
  groups: Type.Array(Type.String({ maxLength: 1024 }), { maxItems: SNAPSHOT_GROUPS_PER_CONNECTION }),
  groupCount: Count
})

/** One server's report: its own connections of the hub, its own counters. */
export const ServerSnapshotSchema = Type.Object({
  connections: Type.Array(ConnectionInfoSchema, { maxItems: SNAPSHOT_MAX_LIMIT }),
  connectionCount: Count,
  messagesReceived: Count,
  messagesSent: Count
})

export type ServerSnapshot = Static<typeof ServerSnapshotSchema> & { connections: ConnectionInfo[] }

/** A report from another server is checked before it is believed. */
export const ServerSnapshotCheck = Compile(ServerSnapshotSchema)

/** Reports of the servers that answered, each with its server's name (none without a backplane). */
export function mergeSnapshots (reports: ReadonlyArray<{ server?: string, snapshot: ServerSnapshot }>, limit: number, unreachable: number): HubSnapshot {
  const connections: ConnectionInfo[] = []
  let connectionCount = 0
  let messagesReceived = 0
  let messagesSent = 0
  for (const { server, snapshot } of reports) {
    connectionCount += snapshot.connectionCount
    messagesReceived += snapshot.messagesReceived
    messagesSent += snapshot.messagesSent
    for (const c of snapshot.connections) {
      if (connections.length >= limit) break
      connections.push(server === undefined ? c : { ...c, server })
    }
  }
  return { connections, connectionCount, omitted: Math.max(0, connectionCount - connections.length), messagesReceived, messagesSent, servers: reports.length, unreachable }
}
