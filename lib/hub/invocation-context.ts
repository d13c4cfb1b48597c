// ctx: one per invocation (and one each for onConnected/onDisconnected). Kept small and
// lazy because the echo hot path creates one per call.
import type { FastifyRequest } from 'fastify'
import type { Connection } from '../connection.js'
import { ClientResultError, HubError } from '../errors.js'
import type { HubLifetimeManager } from '../lifetime/hub-lifetime-manager.js'
import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { CloseOptions, HubCallerClients, HubContext, InvocationContext, SignalRTransport } from '../../types/index.js'
import type { ClientChecks } from './client-checks.js'
import { CallerClients } from './client-proxies.js'
import type { Groups } from './hub-context.js'

export interface ContextHost {
  readonly lifetime: HubLifetimeManager
  readonly hubContext: HubContext & { groups: Groups }
  readonly clientResultTimeout: number
  readonly clientChecks: ClientChecks
  readonly enableDetailedErrors: boolean
}

/** The application's close request as the connection takes it: its text travels as a HubError. */
export function toCloseOptions (options: CloseOptions): { error?: Error, allowReconnect: boolean } {
  return {
    error: options.error === undefined ? undefined : new HubError(options.error),
    allowReconnect: options.allowReconnect === true
  }
}

export class Context implements InvocationContext {
  private callerClients: CallerClients | undefined
  /**
   * Set by the dispatcher while this invocation holds one of the connection's
   * maximumParallelInvocationsPerClient slots; a client result gives the slot up.
   */
  releaseSlot: (() => void) | undefined
  /** onConnected may not wait for client results, as in ASP.NET Core. */
  forbidClientResults = false

  constructor (
    private readonly host: ContextHost,
    private readonly connection: Connection,
    readonly method: string | undefined,
    /** A stream's own signal; other calls use the connection's, made only if read. */
    private readonly ownSignal?: AbortSignal
  ) {}

  get signal (): AbortSignal { return this.ownSignal ?? this.connection.signal }

  get connectionId (): string { return this.connection.connectionId }
  get userId (): string | undefined { return this.connection.userId }
  get items (): Map<string, unknown> { return this.connection.items }
  get request (): FastifyRequest { return this.connection.request as FastifyRequest }
  // Set before the handshake: a context exists only for an established connection
  get transport (): SignalRTransport { return this.connection.transportKind as SignalRTransport }
  get protocol (): string { return (this.connection.protocol as HubProtocol).name }
  get hub (): HubContext { return this.host.hubContext }
  get groups (): Groups { return this.host.hubContext.groups }

  get clients (): HubCallerClients {
    this.callerClients ??= new CallerClients(this.host.lifetime, this.host.clientResultTimeout, this.host.clientChecks, this.connection.connectionId, () => {
      if (this.forbidClientResults) throw new ClientResultError('Client results inside OnConnectedAsync Hub methods are not allowed.')
      // Waiting for a client while holding the slot would block the very message that
      // carries the answer when maximumParallelInvocationsPerClient is 1
      const release = this.releaseSlot
      this.releaseSlot = undefined
      release?.()
    })
    return this.callerClients
  }

  abort (): void {
    this.connection.close({ allowReconnect: false })
  }

  close (options: CloseOptions = {}): void {
    this.connection.close(toCloseOptions(options))
  }
}
