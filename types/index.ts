// The public type surface: hub definitions, contexts, client proxies and the Fastify
// augmentation. Runtime code imports these types; nothing here emits JavaScript.
import type { FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { Static, TSchema } from 'typebox'
import type { Backplane } from '../lib/lifetime/hub-lifetime-manager.js'
import type { HubOptionsInput } from '../lib/options.js'

export type { HubOptionsInput as HubOptions }

/** A target that reaches zero or more connections. */
export interface ClientProxy {
  /** Sends an Invocation without an invocationId; resolves once it is queued on every target. */
  send (method: string, ...args: unknown[]): Promise<void>
}

/** A target that reaches exactly one connection, which can also answer (client results). */
export interface SingleClientProxy extends ClientProxy {
  /**
   * Calls a client method and resolves with the value its handler returns. Rejects when the
   * client answers with an error, disconnects, or clientResultTimeout passes.
   */
  invoke<T = unknown> (method: string, ...args: unknown[]): Promise<T>
}

export interface HubClients {
  readonly all: ClientProxy
  client (connectionId: string): SingleClientProxy
  clients (connectionIds: readonly string[]): ClientProxy
  allExcept (excludedConnectionIds: readonly string[]): ClientProxy
  group (groupName: string): ClientProxy
  groups (groupNames: readonly string[]): ClientProxy
  groupExcept (groupName: string, excludedConnectionIds: readonly string[]): ClientProxy
  user (userId: string): ClientProxy
  users (userIds: readonly string[]): ClientProxy
}

/** The caller-relative targets a hub method sees. */
export interface HubCallerClients extends HubClients {
  readonly caller: SingleClientProxy
  readonly others: ClientProxy
  othersInGroup (groupName: string): ClientProxy
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

export interface CloseOptions {
  /** Sent to the client as "Connection closed with an error. HubException: <error>". */
  error?: string
  /** Lets a client with automatic reconnect come back (default false). */
  allowReconnect?: boolean
}

/** What code outside a hub (routes, timers, workers) gets from app.signalr.hub(path). */
export interface HubContext extends Presence {
  readonly path: string
  readonly clients: HubClients
  readonly groups: GroupManager
  /** Ends a connection with a Close message; a no-op for an unknown id. */
  close (connectionId: string, options?: CloseOptions): Promise<void>
}

/** The context of one invocation (or of onConnected/onDisconnected). */
export interface InvocationContext {
  readonly connectionId: string
  /** From the hub's userId resolver, computed once when the connection is established. */
  readonly userId: string | undefined
  /** Lives as long as the connection: per-connection state for the application. */
  readonly items: Map<string, unknown>
  /** The Fastify request that opened the connection (negotiate's transport request). */
  readonly request: FastifyRequest
  /** Aborts on disconnect and, for streams, on CancelInvocation. */
  readonly signal: AbortSignal
  readonly clients: HubCallerClients
  readonly groups: GroupManager
  /** The hub's own context: presence queries and sends without a caller. */
  readonly hub: HubContext
  /** The method being invoked; undefined in onConnected/onDisconnected. */
  readonly method: string | undefined
  /** Ends the connection with a Close without error that does not allow reconnect (Context.Abort()). */
  abort (): void
  /** Ends the connection with a Close that may carry an error and allow reconnect. */
  close (options?: CloseOptions): void
}

type ArgsOf<A extends readonly TSchema[]> = { -readonly [K in keyof A]: A[K] extends TSchema ? Static<A[K]> : never }
type UploadsOf<U> = U extends readonly TSchema[]
  ? { -readonly [K in keyof U]: U[K] extends TSchema ? AsyncIterable<Static<U[K]>> : never }
  : []
type ResultOf<R, S> = [S] extends [TSchema]
  ? AsyncIterable<Static<S>> | Promise<AsyncIterable<Static<S>>>
  : [R] extends [TSchema] ? Static<R> | Promise<Static<R>> : unknown
type At<T, K> = K extends keyof T ? T[K] : undefined

/** Decides whether the caller may invoke a method; false (or a throw) refuses it. */
export type MethodAuthorizer = (ctx: InvocationContext, args: readonly unknown[]) => boolean | Promise<boolean>

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

/**
 * The methods object of defineHub(). Each of args/returns/stream/uploads is inferred
 * through its own mapped type, because TypeScript reverse-infers only the type parameter a
 * homomorphic mapped type iterates over.
 */
export type HubMethods<A extends Record<string, readonly TSchema[]>, R, S, U> =
  { [K in keyof A]: {
    args: A[K]
    authorize?: MethodAuthorizer
    handler: (ctx: InvocationContext, ...args: [...ArgsOf<A[K]>, ...UploadsOf<At<U, K>>]) => ResultOf<At<R, K>, At<S, K>>
  } }
  & { [K in keyof R]: { returns?: R[K] } }
  & { [K in keyof S]: { stream?: S[K] } }
  & { [K in keyof U]: { uploads?: U[K] } }

export interface HubLifecycle {
  onConnected? (ctx: InvocationContext): void | Promise<void>
  /** `error` is undefined for a clean close, else what ended the connection. */
  onDisconnected? (ctx: InvocationContext, error: Error | undefined): void | Promise<void>
}

export interface HubDefinitionInput<M> extends HubLifecycle {
  methods: M
}

/** A hub as defineHub() returns it; pass it to app.hub(). */
export interface HubDefinition extends HubLifecycle {
  readonly methods: Readonly<Record<string, MethodDefinition>>
}

/** Route-level options for app.hub(): Fastify hooks guard negotiate and every transport request. */
export interface HubRouteOptions extends HubOptionsInput {
  onRequest?: RouteShorthandOptions['onRequest']
  preParsing?: RouteShorthandOptions['preParsing']
  preValidation?: RouteShorthandOptions['preValidation']
  preHandler?: RouteShorthandOptions['preHandler']
  onResponse?: RouteShorthandOptions['onResponse']
  onError?: RouteShorthandOptions['onError']
  /** The user a connection belongs to; feeds clients.user(...). Computed once, at handshake. */
  userId?: (request: FastifyRequest) => string | undefined | null
  /** Scale-out for this hub, replacing the plugin's: redisBackplane({ client, hubName }) from fastify-signalr/redis. */
  backplane?: Backplane
}

export interface SignalRRegistry {
  /** The hub context of a mapped hub, for sends and presence queries from anywhere. */
  hub (path: string): HubContext
  /** Paths of every mapped hub. */
  readonly paths: readonly string[]
  /** Connections of every hub in this process, negotiated ones included. */
  readonly connectionCount: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Maps a hub at `path`: negotiate, WebSockets, Server-Sent Events and Long Polling routes. */
    hub (path: string, hub: HubDefinition, options?: HubRouteOptions): FastifyInstance
    signalr: SignalRRegistry
  }
}
