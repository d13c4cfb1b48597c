// A raw connection handler mapped at a path (app.signalrConnection, ASP.NET Core's
// MapConnectionHandler): the host of its connections. Each connection runs the handler
// once, from the moment its first transport request binds it until the handler settles.
import type { FastifyBaseLogger } from 'fastify'
import type { Connection, RawConnectionHost, UserIdResolver } from '../connection.js'
import { ConnectionClosedError } from '../errors.js'
import type { ResolvedHubOptions } from '../options.js'
import { HubTelemetry } from '../telemetry/hub-telemetry.js'
import type { Telemetry } from '../telemetry/telemetry.js'
import type { MappedEndpoint, TransferFormat } from '../transports/endpoint.js'
import type { RawConnectionHandler } from '../../types/index.js'
import { RawSession } from './raw-connection.js'

export interface RawEndpointInit {
  path: string
  handler: RawConnectionHandler
  options: ResolvedHubOptions
  log: FastifyBaseLogger
  userId: UserIdResolver | undefined
  /** Removes the connection from the token table. */
  forget: (connection: Connection) => void
  telemetry: Telemetry
}

export class RawEndpoint implements RawConnectionHost, MappedEndpoint {
  readonly raw = true
  readonly path: string
  readonly options: ResolvedHubOptions
  readonly log: FastifyBaseLogger
  /** Connection-level telemetry only (open and close lines, duration, active count): there are no hub messages to count. */
  readonly telemetry: HubTelemetry
  // ASP.NET Core offers both to a connection handler; SSE is left the Text one by negotiate
  readonly transferFormats: readonly TransferFormat[] = ['Text', 'Binary']
  readonly forwarding = undefined
  readonly negotiateRedirect = undefined
  private readonly handler: RawConnectionHandler
  private readonly resolveUserId: UserIdResolver | undefined
  private readonly forget: (connection: Connection) => void
  private readonly sessions = new Map<Connection, RawSession>()

  constructor (init: RawEndpointInit) {
    this.path = init.path
    this.handler = init.handler
    this.options = init.options
    this.log = init.log
    this.resolveUserId = init.userId
    this.forget = init.forget
    this.telemetry = new HubTelemetry(init.telemetry, init.path, [])
  }

  onEstablished (connection: Connection): void {
    connection.identify(this.resolveUserId)
    this.telemetry.connectionOpened(connection)
    const session = new RawSession(connection)
    this.sessions.set(connection, session)
    // A handler that throws at once is handled like one that rejects
    Promise.resolve()
      .then(async () => { await this.handler(session) })
      .then(() => { connection.close() }, (err: unknown) => { this.failed(connection, err) })
  }

  private failed (connection: Connection, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err))
    // A send racing the client's departure is no failure of the handler's
    if (error instanceof ConnectionClosedError && connection.state === 'closed') {
      connection.log.debug({ err: error }, 'signalr: the connection handler ended after its connection closed')
      return
    }
    connection.log.error({ err: error }, 'signalr: the connection handler failed; closing its connection')
    connection.close({ error })
  }

  onData (connection: Connection, data: Buffer, binary: boolean): void {
    ;(this.sessions.get(connection) as RawSession).push(data, binary)
  }

  onClosed (connection: Connection, error: Error | undefined, established: boolean): void {
    this.forget(connection)
    this.telemetry.connectionClosed(connection, error, established)
    const session = this.sessions.get(connection)
    if (session === undefined) return
    this.sessions.delete(connection)
    if (error !== undefined) connection.log.debug({ err: error }, 'signalr: connection closed with an error')
    session.end(error)
  }
}
