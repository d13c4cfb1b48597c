// The types of fastify-signalr/client: a hub's schemas, read through `typeof hub`, type
// every call a client makes and every handler it registers. Nothing here emits JavaScript.
import type { HubConnection, IStreamResult } from '@microsoft/signalr'
import type { ClientMethodTypes, ClientMethodsOf, HubDefinition, ServerMethodType, ServerMethodsOf } from './index.js'

/** A call's parameters: the arguments, then one stream (a `Subject<T>`) per upload. */
export type CallArgs<M extends ServerMethodType> = [...M['args'], ...Streams<M['uploads']>]
type Streams<U extends unknown[]> = { [I in keyof U]: IStreamResult<U[I]> }

type Streaming<S> = { [K in keyof S]: S[K] extends { streaming: true } ? K : never }[keyof S]
type NotStreaming<S> = Exclude<keyof S, Streaming<S>>
type Answering<C> = { [K in keyof C]: C[K] extends { answers: true } ? K : never }[keyof C]
type Silent<C> = Exclude<keyof C, Answering<C>>

/** Removes the handler it was returned for. */
export type Unsubscribe = () => void

type Untyped<F> = Readonly<Record<string, F>>

export interface TypedHub<H extends HubDefinition> {
  /** The HubConnection this wraps: start(), stop(), onclose() and the rest are there. */
  readonly connection: HubConnection
  /** Calls a hub method and resolves with its result (its `returns` type). */
  readonly invoke: { readonly [K in NotStreaming<ServerMethodsOf<H>>]: (...args: CallArgs<ServerMethodsOf<H>[K]>) => Promise<ServerMethodsOf<H>[K]['result']> }
  /** Calls a hub method without waiting for its result. */
  readonly send: { readonly [K in NotStreaming<ServerMethodsOf<H>>]: (...args: CallArgs<ServerMethodsOf<H>[K]>) => Promise<void> }
  /** Calls a streaming hub method: subscribe to its items. */
  readonly stream: { readonly [K in Streaming<ServerMethodsOf<H>>]: (...args: CallArgs<ServerMethodsOf<H>[K]>) => IStreamResult<ServerMethodsOf<H>[K]['item']> }
  /** Handles a client method the server sends (one without `returns`). */
  readonly on: OnMap<ClientMethodsOf<H>>
  /** Answers a client result (a client method with `returns`): the handler's value is the answer. */
  readonly handle: HandleMap<ClientMethodsOf<H>>
}

/** Without `client` schemas a hub's client methods are untyped, as its server proxies are. */
type OnMap<C> = C extends ClientMethodTypes
  ? { readonly [K in Silent<C>]: (handler: (...args: C[K]['args']) => void) => Unsubscribe }
  : Untyped<(handler: (...args: unknown[]) => void) => Unsubscribe>

type HandleMap<C> = C extends ClientMethodTypes
  ? { readonly [K in Answering<C>]: (handler: (...args: C[K]['args']) => C[K]['result'] | Promise<C[K]['result']>) => Unsubscribe }
  : Untyped<(handler: (...args: unknown[]) => unknown) => Unsubscribe>
