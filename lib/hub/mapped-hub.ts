// A hub mapped at a path: its options, protocols, lifetime manager and dispatcher, and the
// host its connections report to.
import type { FastifyBaseLogger } from 'fastify'
import type { AsyncApiOptions, HubRouteOptions } from '../../types/index.js'
import type { Connection, HubConnectionHost, UserIdResolver } from '../connection.js'
import type { ConnectionForwarding, HubLifetimeManager } from '../lifetime/hub-lifetime-manager.js'
import type { ResolvedHubOptions } from '../options.js'
import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { HubMessage } from '../protocol/messages.js'
import { protocolsByName } from '../protocol/index.js'
import { HubTelemetry } from '../telemetry/hub-telemetry.js'
import type { Telemetry } from '../telemetry/telemetry.js'
import { describeHub } from './asyncapi.js'
import { ClientChecks } from './client-checks.js'
import type { CompiledHub } from './define-hub.js'
import { Dispatcher } from './dispatcher.js'
import { MappedHubContext } from './hub-context.js'
import type { ContextHost } from './invocation-context.js'
import type { MappedEndpoint, TransferFormat } from '../transports/endpoint.js'
import { SNAPSHOT_GROUPS_PER_CONNECTION, type ServerSnapshot } from './snapshot.js'

export interface MappedHubInit {
  path: string
  hub: CompiledHub
  options: ResolvedHubOptions
  lifetime: HubLifetimeManager
  log: FastifyBaseLogger
  userId: UserIdResolver | undefined
  /** Removes the connection from the token table. */
  forget: (connection: Connection) => void
  /** What the hub's AsyncAPI document says about itself. */
  asyncapi?: AsyncApiOptions
  negotiateRedirect?: HubRouteOptions['negotiateRedirect']
  /** The plugin's observer; the hub reports to it under its path. */
  telemetry: Telemetry
}

export class MappedHub implements HubConnectionHost, ContextHost, MappedEndpoint {
  readonly raw = false
  readonly path: string
  readonly options: ResolvedHubOptions
  readonly protocols: ReadonlyMap<string, HubProtocol>
  readonly lifetime: HubLifetimeManager
  readonly log: FastifyBaseLogger
  readonly hubContext: MappedHubContext
  readonly dispatcher: Dispatcher
  readonly clientChecks: ClientChecks
  readonly definition: CompiledHub['definition']
  readonly telemetry: HubTelemetry
  private readonly resolveUserId: UserIdResolver | undefined
  readonly negotiateRedirect: HubRouteOptions['negotiateRedirect']
  readonly transferFormats: readonly TransferFormat[]
  private readonly forget: (connection: Connection) => void
  /** Connections past their handshake, oldest first (a Set keeps insertion order): snapshot() lists them. */
  private readonly established = new Set<Connection>()

  constructor (init: MappedHubInit) {
    this.path = init.path
    this.options = init.options
    this.protocols = protocolsByName(init.options.protocols)
    const formats = new Set<TransferFormat>()
    for (const p of this.protocols.values()) formats.add(p.transferFormat)
    this.transferFormats = (['Text', 'Binary'] as const).filter((f) => formats.has(f))
    this.lifetime = init.lifetime
    this.log = init.log
    this.resolveUserId = init.userId
    this.negotiateRedirect = init.negotiateRedirect
    this.forget = init.forget
    this.definition = init.hub.definition
    this.telemetry = new HubTelemetry(init.telemetry, init.path, this.protocols.keys())
    this.clientChecks = new ClientChecks(init.hub.client, init.options.validateClientArguments, init.log)
    const describe = describeHub({
      path: init.path, definition: init.hub.definition, transports: init.options.transports, protocols: init.options.protocols, info: init.asyncapi ?? {}
    })
    this.hubContext = new MappedHubContext(init.path, init.lifetime, init.options.clientResultTimeout, this.clientChecks, describe,
      async (limit) => await this.localSnapshot(limit))
    this.dispatcher = new Dispatcher(init.hub, this)
  }

  get clientResultTimeout (): number { return this.options.clientResultTimeout }
  get enableDetailedErrors (): boolean { return this.options.enableDetailedErrors }
  get forwarding (): ConnectionForwarding | undefined { return this.lifetime.forwarding }

  onEstablished (connection: Connection): void {
    connection.identify(this.resolveUserId)
    this.telemetry.connectionOpened(connection)
    this.established.add(connection)
    this.dispatcher.prepare(connection)
    // The client gets its handshake answer only once the lifetime manager has the connection
    // (see Connection.joined), then the hub's onConnected runs
    this.lifetime.onConnected(connection)
      .then(async () => {
        connection.joined()
        await this.dispatcher.connected(connection)
      }, (err: unknown) => {
        connection.log.error({ err }, 'signalr: the lifetime manager refused the connection')
        connection.refuse(err as Error)
      })
      .catch((err: unknown) => { connection.log.error({ err }, 'signalr: connecting to the hub failed') })
  }

  onMessages (connection: Connection, messages: HubMessage[]): void {
    this.dispatcher.enqueue(connection, messages)
  }

  onClosed (connection: Connection, error: Error | undefined, established: boolean): void {
    this.forget(connection)
    this.established.delete(connection)
    this.telemetry.connectionClosed(connection, error, established)
    if (!established) return
    if (error !== undefined) connection.log.debug({ err: error }, 'signalr: connection closed with an error')
    this.lifetime.onDisconnected(connection)
      .catch((err: unknown) => { connection.log.error({ err }, 'signalr: the lifetime manager failed to remove a connection') })
      .then(async () => { await this.dispatcher.disconnected(connection, error) })
      .catch((err: unknown) => { connection.log.error({ err }, 'signalr: disconnect handling failed') })
  }

  /**
   * This server's share of hubContext.snapshot(): its first `limit` connections and its
   * counters. Work is bounded by `limit`, whatever the number of connections.
   */
  async localSnapshot (limit: number): Promise<ServerSnapshot> {
    const picked: Connection[] = []
    for (const c of this.established) {
      if (picked.length >= limit) break
      picked.push(c)
    }
    const connections = await Promise.all(picked.map(async (c) => {
      const groups = await this.lifetime.groupsOf(c.connectionId).catch((err: unknown) => {
        c.log.debug({ err }, 'signalr: the groups of a connection could not be read for a snapshot')
        return []
      })
      return {
        connectionId: c.connectionId,
        userId: c.userId ?? null,
        transport: c.transportKind ?? 'WebSockets',
        protocol: c.protocol?.name ?? '',
        connectedAt: c.createdAt,
        bytesWaiting: c.bytesWaiting,
        groups: groups.length > SNAPSHOT_GROUPS_PER_CONNECTION ? groups.slice(0, SNAPSHOT_GROUPS_PER_CONNECTION) : groups,
        groupCount: groups.length
      }
    }))
    const { messagesReceived, messagesSent } = this.telemetry.messageTotals()
    return { connections, connectionCount: this.established.size, messagesReceived, messagesSent }
  }
}
