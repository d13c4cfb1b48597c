// The public type surface: hub definitions, contexts, client proxies and the Fastify
// augmentation. Runtime code imports these types; nothing here emits JavaScript.
import type { FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { Static, TSchema } from 'typebox'
import type { Backplane } from '../lib/lifetime/hub-lifetime-manager.js'
import type { HubOptionsInput, RawOptionsInput } from '../lib/options.js'
import type { AsyncApiDocument, AsyncApiOptions, AsyncApiRequest } from './asyncapi.js'

export type { HubOptionsInput as HubOptions, RawOptionsInput as RawConnectionOptions }
export type * from './asyncapi.js'

/**
 * The methods a hub may call on its clients, as TypeScript types: what defineHub's `client`
 * schemas give. `undefined` (no `client` declared) leaves every proxy untyped.
 */
export type ClientMethodTypes = Record<string, ClientMethodType>

/** One client method as types. */
export interface ClientMethodType {
  args: unknown[]
  /** What the client's handler answers with; `undefined` for a method without `returns`. */
  result: unknown
  /** Whether the method declares `returns`, and so may be called with invoke(). */
  answers: boolean
}

/** The client methods that declare `returns`: the ones invoke() may call. */
export type AnsweringMethods<C extends ClientMethodTypes> = { [K in keyof C]: C[K]['answers'] extends true ? K : never }[keyof C] & string

/**
 * A target with a backpressure policy (`volatile` or `latest(key)`): its send never waits
 * for a slow client; a client with more than transportMaxBufferSize unread has the message
 * dropped (volatile) or held, replaced by newer sends with the same key (latest).
 */
export interface UntypedPolicyProxy {
  /** Sends an Invocation without an invocationId; resolves once it is queued, dropped or held for every target. */
  send (method: string, ...args: unknown[]): Promise<void>
}

/** A target that reaches zero or more connections, on a hub that declares no `client`. */
export interface UntypedClientProxy {
  /** Sends an Invocation without an invocationId; resolves once it is queued on every target. */
  send (method: string, ...args: unknown[]): Promise<void>
  /** The same targets; a client that is not keeping up does not get the message at all (Socket.IO's volatile). */
  readonly volatile: UntypedPolicyProxy
  /**
   * The same targets; a client that is not keeping up gets only the newest message sent
   * with this key, once it reads again (tickers, cursors). Keys are 1 to 1024 characters.
   */
  latest (key: string): UntypedPolicyProxy
}

/** A target that reaches exactly one connection, which can also answer (client results). */
export interface UntypedSingleClientProxy extends UntypedClientProxy {
  /**
   * Calls a client method and resolves with the value its handler returns. Rejects when the
   * client answers with an error, disconnects, or clientResultTimeout passes.
   */
  invoke<T = unknown> (method: string, ...args: unknown[]): Promise<T>
}

/** UntypedPolicyProxy on a hub that declares `client`. */
export interface TypedPolicyProxy<C extends ClientMethodTypes> {
  /** Sends an Invocation without an invocationId; resolves once it is queued, dropped or held for every target. */
  send<K extends keyof C & string> (method: K, ...args: C[K]['args']): Promise<void>
}

/** A target on a hub that declares `client`: method names and arguments are checked. */
export interface TypedClientProxy<C extends ClientMethodTypes> {
  /** Sends an Invocation without an invocationId; resolves once it is queued on every target. */
  send<K extends keyof C & string> (method: K, ...args: C[K]['args']): Promise<void>
  /** The same targets; a client that is not keeping up does not get the message at all (Socket.IO's volatile). */
  readonly volatile: TypedPolicyProxy<C>
  /** The same targets; a client that is not keeping up gets only the newest message sent with this key. */
  latest (key: string): TypedPolicyProxy<C>
}

export interface TypedSingleClientProxy<C extends ClientMethodTypes> extends TypedClientProxy<C> {
  /**
   * Calls a client method that declares `returns` and resolves with its answer, checked
   * against that schema: an answer that fails it rejects with FST_SIGNALR_INVALID_CLIENT_RESULT.
   */
  invoke<K extends AnsweringMethods<C>> (method: K, ...args: C[K]['args']): Promise<C[K]['result']>
}

/** A target that reaches zero or more connections. */
export type ClientProxy<C extends ClientMethodTypes | undefined = undefined> =
  [C] extends [ClientMethodTypes] ? TypedClientProxy<C> : UntypedClientProxy

/** A target with a backpressure policy: `clients.group(g).volatile`, `clients.all.latest(key)`. */
export type PolicyProxy<C extends ClientMethodTypes | undefined = undefined> =
  [C] extends [ClientMethodTypes] ? TypedPolicyProxy<C> : UntypedPolicyProxy

/** A target that reaches exactly one connection, which can also answer (client results). */
export type SingleClientProxy<C extends ClientMethodTypes | undefined = undefined> =
  [C] extends [ClientMethodTypes] ? TypedSingleClientProxy<C> : UntypedSingleClientProxy

export interface HubClients<C extends ClientMethodTypes | undefined = undefined> {
  readonly all: ClientProxy<C>
  client (connectionId: string): SingleClientProxy<C>
  clients (connectionIds: readonly string[]): ClientProxy<C>
  allExcept (excludedConnectionIds: readonly string[]): ClientProxy<C>
  group (groupName: string): ClientProxy<C>
  groups (groupNames: readonly string[]): ClientProxy<C>
  groupExcept (groupName: string, excludedConnectionIds: readonly string[]): ClientProxy<C>
  user (userId: string): ClientProxy<C>
  users (userIds: readonly string[]): ClientProxy<C>
}

/** The caller-relative targets a hub method sees. */
export interface HubCallerClients<C extends ClientMethodTypes | undefined = undefined> extends HubClients<C> {
  readonly caller: SingleClientProxy<C>
  readonly others: ClientProxy<C>
  othersInGroup (groupName: string): ClientProxy<C>
}

export interface GroupManager {
  /** Idempotent; a no-op for an unknown connection, as in ASP.NET Core. */
  add (connectionId: string, groupName: string): Promise<void>
  remove (connectionId: string, groupName: string): Promise<void>
}

/** Questions ASP.NET Core cannot answer: who is connected, and where. */
export interface Presence {
  /** Connection ids in a group. */
  groupMembers (groupName: string): Promise<string[]>
  /** Groups a connection belongs to. */
  groupsOf (connectionId: string): Promise<string[]>
  /** Connection ids of a user (one user, many devices). */
  userConnections (userId: string): Promise<string[]>
  isUserOnline (userId: string): Promise<boolean>
  /** Connection ids of every connection to the hub. */
  connections (): Promise<string[]>
  connectionCount (): Promise<number>
}

/** One connection as hubContext.snapshot() lists it: what a monitor (the admin view) shows. */
export interface ConnectionInfo {
  readonly connectionId: string
  /** The hub's userId resolver's answer; null for a connection without a user. */
  readonly userId: string | null
  readonly transport: SignalRTransport
  /** The hub protocol's name as the handshake gave it (`json`, `messagepack`). */
  readonly protocol: string
  /** When the connection negotiated, in ms since the epoch. */
  readonly connectedAt: number
  /** Bytes sent to the client that it has not read yet (its socket, its next poll, unacked messages). */
  readonly bytesWaiting: number
  /** Its groups, at most SNAPSHOT_GROUPS_PER_CONNECTION of them (see groupCount). */
  readonly groups: readonly string[]
  /** How many groups it is in. */
  readonly groupCount: number
  /** The server that holds it (its backplane serverName); absent without a backplane. */
  readonly server?: string
}

/**
 * A bounded picture of a hub, across the fleet with a backplane: hubContext.snapshot().
 * Counts cover every connection; `connections` lists at most `limit` of them.
 */
export interface HubSnapshot {
  /** At most `limit` connections, oldest first on each server. */
  readonly connections: ConnectionInfo[]
  /** Every established connection of the hub on the servers that answered. */
  readonly connectionCount: number
  /** How many connections `connections` leaves out. */
  readonly omitted: number
  /** Hub protocol messages from and to clients since each server mapped the hub, summed. */
  readonly messagesReceived: number
  readonly messagesSent: number
  /** Servers that answered: 1 without a backplane. */
  readonly servers: number
  /** Servers of the fleet that did not answer within the backplane's commandTimeout. */
  readonly unreachable: number
}

export interface SnapshotOptions {
  /** How many connections to list, 0 to 1000 (default 100). */
  limit?: number
}

export interface CloseOptions {
  /** Sent to the client as "Connection closed with an error. HubException: <error>". */
  error?: string
  /** Lets a client with automatic reconnect come back (default false). */
  allowReconnect?: boolean
}

/** What code outside a hub (routes, timers, workers) gets from app.signalr.hub(path). */
export interface HubContext<C extends ClientMethodTypes | undefined = undefined> extends Presence {
  readonly path: string
  readonly clients: HubClients<C>
  readonly groups: GroupManager
  /** Ends a connection with a Close message; a no-op for an unknown id. */
  close (connectionId: string, options?: CloseOptions): Promise<void>
  /**
   * A bounded, read-only picture of the hub for monitoring: counts, message totals and up to
   * `limit` connections with their transport, protocol, age, unread bytes and groups. With a
   * backplane every fastify-signalr server of the fleet answers for its own connections.
   */
  snapshot (options?: SnapshotOptions): Promise<HubSnapshot>
  /**
   * The hub's AsyncAPI 3.0 document, generated from its schemas. `host` names the servers
   * (default: the route option's `asyncapi.host`, else `localhost`).
   */
  asyncapi (options?: AsyncApiRequest): AsyncApiDocument
}

/** The context of one invocation (or of onConnected/onDisconnected). */
/** A SignalR transport, spelled as the clients' HttpTransportType spells it. */
export type SignalRTransport = 'WebSockets' | 'ServerSentEvents' | 'LongPolling'

export interface InvocationContext<C extends ClientMethodTypes | undefined = undefined> {
  readonly connectionId: string
  /** From the hub's userId resolver, computed once when the connection is established. */
  readonly userId: string | undefined
  /** Lives as long as the connection: per-connection state for the application. */
  readonly items: Map<string, unknown>
  /** The Fastify request that opened the connection (negotiate's transport request). */
  readonly request: FastifyRequest
  /** Aborts on disconnect and, for streams, on CancelInvocation. */
  readonly signal: AbortSignal
  readonly clients: HubCallerClients<C>
  readonly groups: GroupManager
  /** The hub's own context: presence queries and sends without a caller. */
  readonly hub: HubContext<C>
  /** The method being invoked; undefined in onConnected/onDisconnected. */
  readonly method: string | undefined
  /** The transport the connection uses; it never changes, even across a stateful reconnect. */
  readonly transport: SignalRTransport
  /** The hub protocol's name as the client's handshake gave it (`json`, `messagepack`). */
  readonly protocol: string
  /** Ends the connection with a Close without error that does not allow reconnect (Context.Abort()). */
  abort (): void
  /** Ends the connection with a Close that may carry an error and allow reconnect. */
  close (options?: CloseOptions): void
}

type ArgsOf<A extends readonly TSchema[]> = { -readonly [K in keyof A]: A[K] extends TSchema ? Static<A[K]> : never }
type ItemsOf<U> = U extends readonly TSchema[]
  ? { -readonly [K in keyof U]: U[K] extends TSchema ? Static<U[K]> : never }
  : []
type UploadsOf<U> = U extends readonly TSchema[]
  ? { -readonly [K in keyof U]: U[K] extends TSchema ? AsyncIterable<Static<U[K]>> : never }
  : []
type IsSchema<T> = [T] extends [never] ? false : [T] extends [TSchema] ? true : false
type ResultOf<R, S> = IsSchema<S> extends true
  ? AsyncIterable<Static<S & TSchema>> | Promise<AsyncIterable<Static<S & TSchema>>>
  : IsSchema<R> extends true ? Static<R & TSchema> | Promise<Static<R & TSchema>> : unknown
type At<T, K> = K extends keyof T ? T[K] : undefined

/** Decides whether the caller may invoke a method; false (or a throw) refuses it. */
export type MethodAuthorizer<C extends ClientMethodTypes | undefined = undefined> =
  (ctx: InvocationContext<C>, args: readonly unknown[]) => boolean | Promise<boolean>

export interface MethodDefinition {
  /** One schema per positional argument; the handler's parameters are typed from them. */
  args: readonly TSchema[]
  /** The result's schema (documents and types the result). */
  returns?: TSchema
  /** Marks a server-to-client stream: the handler returns an AsyncIterable of these items. */
  stream?: TSchema
  /** Client-to-server streams: each becomes an AsyncIterable argument after `args`. */
  uploads?: readonly TSchema[]
  /** Per-method authorization; a refused call gets an error Completion. */
  authorize?: MethodAuthorizer
  handler: (ctx: InvocationContext, ...args: never[]) => unknown
}

/** A method the server may call on its clients, declared in defineHub's `client`. */
export interface ClientMethodDefinition {
  /** One schema per positional argument the server sends. */
  args: readonly TSchema[]
  /**
   * The schema of the client's answer. Only a method that declares it can be called with
   * invoke() (a client result); every answer is checked against it.
   */
  returns?: TSchema
}

export type ClientMethodDefinitions = Record<string, ClientMethodDefinition>

/** The types a `client` declaration gives; `undefined` when the hub declares none. */
export type ClientTypesOf<C> = [C] extends [ClientMethodDefinitions]
  ? { [K in keyof C]: {
      args: ArgsOf<C[K]['args']>
      result: C[K] extends { returns: infer R extends TSchema } ? Static<R> : undefined
      answers: C[K] extends { returns: TSchema } ? true : false
    } }
  : undefined

/** One hub method as its callers see it. */
export interface ServerMethodType {
  /** The positional arguments. */
  args: unknown[]
  /** The item type of each upload stream, passed after `args`. */
  uploads: unknown[]
  /** What invoke() resolves with: the `returns` schema's type, else unknown. */
  result: unknown
  /** The item type of a server-to-client stream; never for a method that does not stream. */
  item: unknown
  streaming: boolean
}

export type ServerMethodTypes = Record<string, ServerMethodType>

/** Both directions of a hub's contract, as types. */
export interface HubTypes {
  server: ServerMethodTypes
  client: ClientMethodTypes | undefined
}

/** The server half of the contract that defineHub() infers. */
export type ServerTypesOf<A, R, S, U> = { [K in keyof A]: {
  args: A[K] extends readonly TSchema[] ? ArgsOf<A[K]> : never
  uploads: ItemsOf<At<U, K>>
  result: IsSchema<At<S, K>> extends true ? undefined : IsSchema<At<R, K>> extends true ? Static<At<R, K> & TSchema> : unknown
  item: IsSchema<At<S, K>> extends true ? Static<At<S, K> & TSchema> : never
  streaming: IsSchema<At<S, K>>
} }

/**
 * The methods object of defineHub(). Each of args/returns/stream/uploads is inferred
 * through its own mapped type, because TypeScript reverse-infers only the type parameter a
 * homomorphic mapped type iterates over. `C` is the client contract the handlers' ctx sees.
 */
export type HubMethods<A extends Record<string, readonly TSchema[]>, R, S, U, C extends ClientMethodTypes | undefined = undefined> =
  { [K in keyof A]: {
    args: A[K]
    authorize?: MethodAuthorizer<C>
    handler: (ctx: InvocationContext<C>, ...args: [...ArgsOf<A[K]>, ...UploadsOf<At<U, K>>]) => ResultOf<At<R, K>, At<S, K>>
  } }
  & { [K in keyof R]: { returns?: R[K] } }
  & { [K in keyof S]: { stream?: S[K] } }
  & { [K in keyof U]: { uploads?: U[K] } }

export interface HubLifecycle<C extends ClientMethodTypes | undefined = undefined> {
  onConnected? (ctx: InvocationContext<C>): void | Promise<void>
  /** `error` is undefined for a clean close, else what ended the connection. */
  onDisconnected? (ctx: InvocationContext<C>, error: Error | undefined): void | Promise<void>
}

export interface HubDefinitionInput<M, C = undefined> extends HubLifecycle<ClientTypesOf<C>> {
  methods: M
  /**
   * The methods the server may call on clients. Declaring them types every send() and
   * invoke() of this hub's proxies and checks every client result against `returns`.
   */
  client?: C
}

/** Never set at run time: it only carries a hub's types to the places that need them. */
declare const hubTypes: unique symbol

/** A hub as defineHub() returns it; pass it to app.hub(). */
export interface HubDefinition<T extends HubTypes = HubTypes> extends HubLifecycle {
  readonly methods: Readonly<Record<string, MethodDefinition>>
  readonly client?: Readonly<ClientMethodDefinitions>
  /** Types only (never present): what the hub's schemas say, for typed proxies and clients. */
  readonly [hubTypes]?: T
}

/** The hub methods of a hub, as types: `ServerMethodsOf<typeof chat>`. */
export type ServerMethodsOf<H extends HubDefinition> = H extends HubDefinition<infer T> ? T['server'] : never

/** The client methods of a hub, as types; `undefined` for a hub that declares none. */
export type ClientMethodsOf<H extends HubDefinition> = H extends HubDefinition<infer T>
  ? [T['client']] extends [ClientMethodTypes] ? T['client'] : undefined
  : never

/** Where negotiate sends a client instead (Azure SignalR Service answers so). */
export interface NegotiateRedirect {
  url: string
  accessToken?: string
}

/**
 * Route-level options that app.hub() and app.signalrConnection() share: Fastify hooks guard
 * negotiate and every transport request; logLevel, config and constraints apply to every
 * route of the path; and the user.
 */
export interface EndpointRouteOptions {
  onRequest?: RouteShorthandOptions['onRequest']
  preParsing?: RouteShorthandOptions['preParsing']
  preValidation?: RouteShorthandOptions['preValidation']
  preHandler?: RouteShorthandOptions['preHandler']
  preSerialization?: RouteShorthandOptions['preSerialization']
  onSend?: RouteShorthandOptions['onSend']
  onResponse?: RouteShorthandOptions['onResponse']
  onTimeout?: RouteShorthandOptions['onTimeout']
  onError?: RouteShorthandOptions['onError']
  onRequestAbort?: RouteShorthandOptions['onRequestAbort']
  /** The log level of the hub's routes, as for any route. */
  logLevel?: RouteShorthandOptions['logLevel']
  /** Route config, readable in hooks as request.routeOptions.config. */
  config?: RouteShorthandOptions['config']
  /** Route constraints (host, version) for every route of the hub. */
  constraints?: RouteShorthandOptions['constraints']
  /** The user a connection belongs to; feeds clients.user(...). Computed once, at handshake. */
  userId?: (request: FastifyRequest) => string | undefined | null
}

export interface HubRouteOptions extends HubOptionsInput, EndpointRouteOptions {
  /**
   * Answers negotiate with the spec's redirect, `{ url, accessToken }`, computed per request
   * after the hooks above: the client then negotiates at `url` (an absolute http or https
   * hub URL) and, with `accessToken`, sends that token from then on. Return undefined to
   * negotiate here as usual.
   */
  negotiateRedirect?: (request: FastifyRequest) => NegotiateRedirect | undefined | null | Promise<NegotiateRedirect | undefined | null>
  /** Serves the hub's AsyncAPI 3.0 document at GET {path}/asyncapi.json, behind the hooks above. */
  asyncapi?: boolean | AsyncApiOptions
  /** Scale-out for this hub, replacing the plugin's: redisBackplane({ client, hubName }) from fastify-signalr/redis. */
  backplane?: Backplane
}

/** app.signalr: the mapped hubs and the connection count. */
export interface SignalRRegistry {
  /**
   * The hub context of a mapped hub, for sends and presence queries from anywhere. `path` is
   * the one clients connect to, prefix included (a trailing slash is ignored). Name the hub
   * to type its proxies by its `client` schemas: `hub('/hubs/chat', chat)` also checks that
   * `chat` is the hub mapped there (FST_SIGNALR_HUB_MISMATCH if not);
   * `hub<typeof chat>('/hubs/chat')` types it without the check.
   */
  hub<H extends HubDefinition = HubDefinition> (path: string, definition?: H): HubContext<ClientMethodsOf<H>>
  /** Paths of every mapped hub, as clients reach them (with the prefix of their scope). */
  readonly paths: readonly string[]
  /** Connections of every hub and raw connection handler in this process, negotiated ones included. */
  readonly connectionCount: number
}

/**
 * A message of a raw connection: a string when it came as text (a WebSocket text message,
 * or a POST with a `text/*` Content-Type, as the JS client sends strings), else the bytes.
 */
export type RawMessage = string | Buffer

/**
 * One client connection of app.signalrConnection(): negotiate and the three transports,
 * without the hub protocol. Iterate it for the client's messages; the iteration ends
 * once the connection has ended and every message that arrived was read.
 */
export interface RawConnection extends AsyncIterable<RawMessage> {
  readonly connectionId: string
  /** The Fastify request that opened the connection (its first transport request). */
  readonly request: FastifyRequest
  readonly transport: SignalRTransport
  /** From the route's userId resolver, computed once when the connection opens. */
  readonly userId: string | undefined
  /** Lives as long as the connection: per-connection state for the application. */
  readonly items: Map<string, unknown>
  /** Aborts when the connection ends, for whatever reason. */
  readonly signal: AbortSignal
  /** Resolves once the connection has ended: with what ended it, or undefined for a clean close. Never rejects. */
  readonly closed: Promise<Error | undefined>
  /** The next message; undefined once the connection has ended and every message was read. */
  read (): Promise<RawMessage | undefined>
  /**
   * Sends one message: a string as text, bytes as binary (on WebSockets, one message of that
   * type; on Server-Sent Events, one event, whose data the client reads as UTF-8 text; on
   * Long Polling, bytes for the next poll, joined with the others it takes). Resolves once
   * the client has room for more (the hub connections' pacing), rejects with
   * FST_SIGNALR_CONNECTION_CLOSED once the connection has ended.
   */
  send (data: string | Uint8Array): Promise<void>
  /** Ends the connection; with an error, the client hears of a failure (WebSocket close 1011, a last poll answered 500). */
  close (error?: Error): void
}

/**
 * Runs once per connection, as ASP.NET Core's ConnectionHandler.OnConnectedAsync: the
 * connection ends when the returned promise settles (a rejection is logged and closes it
 * with an error).
 */
export type RawConnectionHandler = (connection: RawConnection) => void | Promise<void>

/** Route-level options of app.signalrConnection(): the hooks, the user, and the transports' limits. */
export interface RawConnectionRouteOptions extends RawOptionsInput, EndpointRouteOptions {}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Maps a hub at `path` in this scope (its prefix applies): negotiate, WebSockets,
     * Server-Sent Events and Long Polling routes. Call it before the app starts.
     */
    hub (path: string, hub: HubDefinition, options?: HubRouteOptions): this
    /**
     * Maps a raw connection handler at `path` in this scope, as ASP.NET Core's
     * MapConnectionHandler: negotiate and the three transports, guarded by the route's hooks,
     * with no hub protocol, Pings or client timeout. Call it before the app starts.
     */
    signalrConnection (path: string, handler: RawConnectionHandler, options?: RawConnectionRouteOptions): this
    signalr: SignalRRegistry
  }
}
