// The seam for scale-out: every send and every group or user membership change goes through
// a HubLifetimeManager (ASP.NET Core's abstraction of the same name). The in-memory one
// serves one process; a backplane (Redis) implements the same contract across processes.
import type { FastifyBaseLogger } from 'fastify'
import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { InvocationMessage } from '../protocol/messages.js'
import type { SerializedMessage } from '../protocol/serialized-message.js'
import type { ServerSnapshot } from '../hub/snapshot.js'

/** Who a send reaches. `exclude` lists connection ids that must not receive it. */
export type SendTarget =
  | { kind: 'all', exclude?: readonly string[] }
  | { kind: 'connections', ids: readonly string[] }
  | { kind: 'groups', names: readonly string[], exclude?: readonly string[] }
  | { kind: 'users', ids: readonly string[] }

/**
 * How one send treats a connection whose client has more than transportMaxBufferSize unread
 * (or, with stateful reconnect, has lost its transport). Without a policy the message is
 * queued and the sender waits for such a connection to drain.
 * - `volatile`: the message is dropped for that connection (Socket.IO's volatile): for data
 *   that goes stale, such as a position that the next send repeats.
 * - `latest`: the message is held for that connection, and a newer send with the same key
 *   replaces it while it is still held; what is held goes out once the client reads again.
 * Neither makes the sender wait.
 */
export type SendPolicy =
  | { readonly kind: 'volatile' }
  | { readonly kind: 'latest', readonly key: string }

/** The part of a connection a lifetime manager needs. */
export interface LifetimeConnection {
  readonly connectionId: string
  readonly userId: string | undefined
  /** The hub protocol it speaks once the handshake is done (a backplane parses and writes in it). */
  readonly protocol: HubProtocol | undefined
  /**
   * Queues an already-serialised message (or, by `policy`, drops or holds it for a congested
   * client); returns false when the connection is gone.
   */
  write (message: SerializedMessage, policy?: SendPolicy): boolean
  /** The client has more unread than the hub allows: a sender should wait for drained(). */
  readonly congested: boolean
  /** Resolves once the connection is no longer congested, or has ended (bounded by the send timeout). */
  drained (): Promise<void>
  /**
   * Sends an Invocation carrying an invocationId and resolves with the client's Completion
   * (a client result).
   */
  invokeClient (message: Omit<InvocationMessage, 'invocationId' | 'type'>, timeoutMs: number): Promise<unknown>
  /** Ends the connection with a Close message. */
  close (options: { error?: Error, allowReconnect?: boolean }): void
}

export interface HubLifetimeManager {
  // send() resolves once the message is queued for every target and every target it made
  // congested has drained: a sender that outpaces its readers is slowed to their pace
  // instead of filling the server's memory or getting a reader cut
  onConnected (connection: LifetimeConnection): Promise<void>
  /** Removes the connection from every index (groups, user). */
  onDisconnected (connection: LifetimeConnection): Promise<void>
  // With a policy the sender never waits: congested connections drop or hold the message
  send (target: SendTarget, message: InvocationMessage, policy?: SendPolicy): Promise<void>
  /** A client result from one connection; rejects if it does not exist or disconnects. */
  invokeConnection (connectionId: string, method: string, args: unknown[], timeoutMs: number): Promise<unknown>
  /** Closes a connection wherever it lives; a no-op for an unknown one. */
  closeConnection (connectionId: string, options: { error?: Error, allowReconnect?: boolean }): Promise<void>
  addToGroup (connectionId: string, groupName: string): Promise<void>
  removeFromGroup (connectionId: string, groupName: string): Promise<void>
  groupMembers (groupName: string): Promise<string[]>
  groupsOf (connectionId: string): Promise<string[]>
  userConnections (userId: string): Promise<string[]>
  connections (): Promise<string[]>
  connectionCount (): Promise<number>
  close (): Promise<void>
  /**
   * A backplane's hubContext.snapshot(): the share of every server of the fleet (each made by
   * its BackplaneHub.snapshot), with its server's name. Absent: this server's share is all.
   */
  snapshot? (limit: number): Promise<{ reports: Array<{ server: string, snapshot: ServerSnapshot }>, unreachable: number }>
  /** Set when the backplane forwards transport requests (no sticky sessions needed). */
  readonly forwarding?: ConnectionForwarding
}

/** What negotiate tells the fleet about a connection that no server owns yet. */
export interface NegotiatedConnection {
  connectionId: string
  negotiateVersion: number
  statefulReconnect: boolean
}

/** The transport requests that may reach another server than the connection's owner. */
export type ForwardedOp = 'send' | 'poll' | 'delete'

/** An HTTP answer, made on the owner, given by the server that took the request. */
export interface ForwardedAnswer {
  status: number
  contentType: string | undefined
  body: Buffer
}

export type ForwardOutcome =
  | { kind: 'answered', answer: ForwardedAnswer }
  /** No server owns the connection (it never started, or ended, or its owner died). */
  | { kind: 'nobody' }
  /** The request reached the owner but no answer came back: it may have been acted on. */
  | { kind: 'lost' }

/**
 * Request forwarding between the servers of a fleet (reference/sticky-free.md): negotiate
 * remembers the connection fleet-wide, the first transport request makes it live on the
 * server that receives it, and later requests reaching another server travel to the owner.
 * Tokens are secret: implementations keep only a hash of them outside the process.
 */
export interface ConnectionForwarding {
  /** Negotiate: the connection may start on any server within `ttlMs`. */
  remember (token: string, connection: NegotiatedConnection, ttlMs: number): Promise<void>
  /** The first transport request: takes the negotiated connection, at most once fleet-wide. */
  take (token: string): Promise<NegotiatedConnection | undefined>
  /** Sends a request to the owner and waits for its answer; rejects when the backplane is down. */
  forward (token: string, op: ForwardedOp, body: Buffer, timeoutMs: number): Promise<ForwardOutcome>
  /** Tells the owner that an answer it gave could not reach the client. */
  abort (token: string): void
  /**
   * This server owns the connection: requests forwarded to it go to `handler`. `lost` is
   * called when an answer could not be sent back (the client cannot know what happened).
   */
  serve (token: string, handler: (op: ForwardedOp | 'abort', body: Buffer) => Promise<ForwardedAnswer>, lost: () => void): Promise<void>
  unserve (token: string): void
}

/** The bounded set of channel kinds a backplane publishes on (a metric attribute). */
export type BackplaneChannelKind = 'all' | 'connection' | 'group' | 'user' | 'group_management' | 'ack' | 'return' | 'server_request' | 'forward'

/** Why a backplane operation failed (a metric attribute). */
export type BackplaneFailure = 'unavailable' | 'timeout' | 'error'

/**
 * What a backplane reports about its own traffic and health, for metrics. Counting only:
 * the backplane logs for itself.
 */
export interface BackplaneObserver {
  published (channel: BackplaneChannelKind): void
  failed (operation: 'publish' | 'subscribe' | 'command', reason: BackplaneFailure): void
  /** The connection to the backplane's server came back after it had been lost. */
  reconnected (): void
}

/** What a backplane learns about each hub it serves. */
export interface BackplaneHub {
  /** The hub's path (normalised, without a trailing slash). */
  readonly path: string
  /** Every protocol the hub speaks: a backplane writes each message once in each. */
  readonly protocols: ReadonlyMap<string, HubProtocol>
  readonly log: FastifyBaseLogger
  readonly clientResultTimeout: number
  /** Where the backplane's publishes, failures and reconnects are counted, when observed. */
  readonly observer?: BackplaneObserver
  /** This server's share of hubContext.snapshot() (its own connections, at most `limit`). */
  readonly snapshot?: (limit: number) => Promise<ServerSnapshot>
}

/**
 * Scale-out across processes (`backplane` at register level or per hub): it makes each
 * hub's lifetime manager. `fastify-signalr/redis` provides one.
 */
export interface Backplane {
  /** What it runs on, such as 'redis': the `signalr.backplane` attribute of its metrics. */
  readonly name?: string
  createLifetimeManager (hub: BackplaneHub): HubLifetimeManager
}
