// Turns a connection's parsed messages into hub method calls, in order, and their results
// into Completions. It owns per-connection dispatch state: the parallel-invocation slots,
// running server-to-client streams, open upload streams.
import type { Connection } from '../connection.js'
import { HubError } from '../errors.js'
import { Fifo } from '../fifo.js'
import type { InvocationOutcome, ObservedInvocation } from '../telemetry/invocation.js'
import {
  MessageType, type CompletionMessage, type HubMessage, type InvocationMessage, type StreamInvocationMessage
} from '../protocol/messages.js'
import type { CompiledHub, CompiledMethod } from './define-hub.js'
import { Context, type ContextHost } from './invocation-context.js'
import { UploadStream } from './upload-stream.js'
import { validationProblem } from './validation.js'

interface DispatchState {
  readonly queue: Fifo<HubMessage>
  /** onConnected has finished: messages may run. */
  ready: boolean
  pumping: boolean
  /** The next message waits (for a slot, or for room in an upload): the client timeout is paused. */
  blocked: boolean
  active: number
  // Made by the first stream or upload: most connections never have one, and two empty Maps
  // are about 500 bytes per connection
  streams: Map<string, AbortController> | undefined
  uploads: Map<string, UploadStream> | undefined
  /** Gives a parallel-invocation slot back: made once per connection and shared by its calls. */
  readonly release: () => void
}

const ABORTED = Symbol('aborted')
/** Shared by every call without client-to-server streams: nothing is allocated for them. */
const NO_STREAM_IDS: readonly string[] = []
const NO_UPLOADS: UploadStream[] = []

/**
 * What ASP.NET Core's protocols say when arguments do not bind: .NET clients and tests match
 * on it, so it leads our schema's own, more precise detail.
 */
const BINDING_ERROR = 'InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.'

/**
 * Messages a connection may have waiting (for a slot or for room in an upload) before the
 * transport stops reading it; reading resumes once half of them have run.
 */
export const MAX_QUEUED_MESSAGES = 128

export class Dispatcher {
  private readonly states = new WeakMap<Connection, DispatchState>()

  /** The methods by the names the hub declares them with: found without lowercasing the target. */
  private readonly declared: ReadonlyMap<string, CompiledMethod>

  constructor (private readonly hub: CompiledHub, private readonly host: ContextHost) {
    this.declared = new Map([...hub.methods.values()].map((m) => [m.name, m]))
  }

  /** Case-insensitive, as ASP.NET Core; the declared casing, which clients nearly always use, costs no new string. */
  private method (target: string): CompiledMethod | undefined {
    return this.declared.get(target) ?? this.hub.methods.get(target.toLowerCase())
  }

  /** The handshake is done: messages are queued from now on, and run once connected() is done. */
  prepare (connection: Connection): void {
    const state: DispatchState = {
      queue: new Fifo(),
      ready: false,
      pumping: false,
      blocked: false,
      active: 0,
      streams: undefined,
      uploads: undefined,
      release: () => {
        state.active--
        this.pump(connection, state)
      }
    }
    this.states.set(connection, state)
  }

  /** The connection is in the lifetime manager: runs onConnected, then lets queued messages through. */
  async connected (connection: Connection): Promise<void> {
    const state = this.states.get(connection)
    if (state === undefined || connection.state !== 'connected') return
    const onConnected = this.hub.definition.onConnected
    if (onConnected !== undefined) {
      const ctx = new Context(this.host, connection, undefined)
      ctx.forbidClientResults = true
      try {
        await onConnected(ctx)
      } catch (err) {
        connection.log.error({ err }, 'signalr: onConnected threw; closing the connection')
        connection.close({ error: err as Error, allowReconnect: false })
        return
      }
    }
    state.ready = true
    this.pump(connection, state)
  }

  /** Messages of the connection waiting to run: at most MAX_QUEUED_MESSAGES plus one slice. */
  queued (connection: Connection): number {
    return this.states.get(connection)?.queue.length ?? 0
  }

  enqueue (connection: Connection, messages: HubMessage[]): void {
    const state = this.states.get(connection)
    if (state === undefined) return
    for (const m of messages) state.queue.push(m)
    this.pump(connection, state)
    if (state.queue.length > MAX_QUEUED_MESSAGES) connection.pauseInbound()
  }

  /** Cancels what the connection still runs and runs onDisconnected. */
  async disconnected (connection: Connection, error: Error | undefined): Promise<void> {
    const state = this.states.get(connection)
    if (state !== undefined) {
      state.queue.clear()
      this.unblock(connection, state)
      for (const c of state.streams?.values() ?? []) c.abort()
      for (const u of state.uploads?.values() ?? []) u.complete(new HubError('The connection was closed.'))
    }
    const onDisconnected = this.hub.definition.onDisconnected
    if (onDisconnected === undefined || state === undefined) return
    try {
      await onDisconnected(new Context(this.host, connection, undefined), error)
    } catch (err) {
      connection.log.error({ err }, 'signalr: onDisconnected threw')
    }
  }

  private pump (connection: Connection, state: DispatchState): void {
    if (state.pumping || !state.ready) return
    state.pumping = true
    try {
      this.drain(connection, state)
    } finally {
      state.pumping = false
    }
    if (state.queue.length <= MAX_QUEUED_MESSAGES / 2) connection.resumeInbound()
  }

  /** Runs queued messages in order until one has to wait. */
  private drain (connection: Connection, state: DispatchState): void {
    const max = connection.host.options.maximumParallelInvocationsPerClient
    while (state.queue.length > 0 && connection.state === 'connected') {
      const m = state.queue.peek() as HubMessage
      // Like ASP.NET Core, a call waiting for a slot holds back everything behind it
      if (m.type === MessageType.Invocation && state.active >= max && this.takesSlot(m)) {
        this.block(connection, state)
        return
      }
      if (m.type === MessageType.StreamItem) {
        const upload = state.uploads?.get(m.invocationId)
        if (upload?.full === true) {
          upload.onSpace = () => this.pump(connection, state)
          this.block(connection, state)
          return
        }
      }
      this.unblock(connection, state)
      state.queue.shift()
      try {
        this.handle(connection, state, m)
      } catch (err) {
        // Nothing a client sends may escape into the transport's event handlers
        connection.log.error({ err }, 'signalr: a message could not be dispatched; closing the connection')
        connection.close({ error: err as Error, allowReconnect: true })
        return
      }
    }
  }

  // ASP.NET Core stops the client timeout while its receive loop waits on a dispatch: the
  // client's Pings cannot get through then, so its silence proves nothing
  private block (connection: Connection, state: DispatchState): void {
    if (state.blocked) return
    state.blocked = true
    connection.pauseClientTimeout()
  }

  private unblock (connection: Connection, state: DispatchState): void {
    if (!state.blocked) return
    state.blocked = false
    connection.resumeClientTimeout()
  }

  private takesSlot (m: InvocationMessage): boolean {
    const method = this.method(m.target)
    // Streaming methods, either direction, do not count (ASP.NET Core's rule)
    return method !== undefined && !method.streaming && method.uploads.length === 0
  }

  private handle (connection: Connection, state: DispatchState, m: HubMessage): void {
    switch (m.type) {
      case MessageType.Invocation:
        this.invoke(connection, state, m)
        return
      case MessageType.StreamInvocation:
        void this.stream(connection, state, m)
        return
      case MessageType.StreamItem: {
        const upload = state.uploads?.get(m.invocationId)
        if (upload === undefined) connection.log.debug({ streamId: m.invocationId }, 'signalr: StreamItem for an unknown stream ignored')
        else if (m.forbiddenKey !== undefined) upload.complete(new HubError(`Invalid item for a stream: the key '${m.forbiddenKey}' is not allowed.`))
        else upload.push(m.item)
        return
      }
      case MessageType.Completion:
        this.completion(connection, state, m)
        return
      case MessageType.CancelInvocation:
        state.streams?.get(m.invocationId)?.abort()
        return
      case MessageType.Close:
        connection.log.debug({ error: m.error }, 'signalr: the client closed the connection')
        connection.close({ error: m.error === undefined ? undefined : new HubError(m.error), clientInitiated: true })
    }
    // Ping needs nothing here: the connection already counted it as life.
    // Ack and Sequence belong to stateful reconnect, handled by the connection.
  }

  private completion (connection: Connection, state: DispatchState, m: CompletionMessage): void {
    // A result carrying a forbidden key is never handed on: its waiter gets an error instead
    const refused = m.forbiddenKey === undefined ? m : { ...m, result: undefined, hasResult: false, error: `The client's result held the key '${m.forbiddenKey}', which is not allowed.` }
    const upload = state.uploads?.get(m.invocationId)
    if (upload !== undefined) {
      state.uploads?.delete(m.invocationId)
      upload.complete(refused.error === undefined ? undefined : new HubError(refused.error))
      return
    }
    if (!connection.completeClientResult(refused)) {
      connection.logRepeatable('warn', 'unknown-completion', { invocationId: m.invocationId }, 'signalr: Completion for an unknown invocation ignored')
    }
  }

  /** A call that cannot run: its error Completion, unless it was a non-blocking call. */
  private refuse (connection: Connection, id: string | undefined, error: string): void {
    if (id !== undefined) this.sendCompletion(connection, { type: MessageType.Completion, invocationId: id, error })
  }

  /**
   * Looks up and checks a call; returns the method, or the error text for the caller.
   * Nothing is allocated for a valid call.
   */
  private bind (connection: Connection, state: DispatchState, m: InvocationMessage | StreamInvocationMessage, streaming: boolean): CompiledMethod | string {
    const method = this.method(m.target)
    if (method === undefined) {
      connection.logRepeatable('info', 'unknown-method', { method: m.target }, 'signalr: unknown hub method')
      return `Failed to invoke '${m.target}' due to an error on the server. HubException: Method does not exist.`
    }
    if (m.forbiddenKey !== undefined) {
      connection.logRepeatable('info', 'forbidden-key', { method: m.target, key: m.forbiddenKey }, 'signalr: invocation refused: its payload held a forbidden key')
      return `Failed to invoke '${m.target}' due to an error on the server. InvalidDataException: The key '${m.forbiddenKey}' is not allowed.`
    }
    // ASP.NET Core's order: its protocol binds the arguments (count, then types; stream
    // parameters are not among them) before the dispatcher checks the invocation's kind
    if (m.arguments.length !== method.args.length) {
      return `Failed to invoke '${m.target}' due to an error on the server. InvalidDataException: Invocation provides ${m.arguments.length} argument(s) but target expects ${method.args.length}.`
    }
    for (let i = 0; i < method.args.length; i++) {
      const problem = validationProblem(method.args[i], m.arguments[i])
      if (problem !== undefined) {
        connection.logRepeatable('info', 'invalid-argument', { method: m.target, argument: i }, 'signalr: invalid hub method argument')
        return `Failed to invoke '${m.target}' due to an error on the server. ${BINDING_ERROR} Argument ${i} is invalid: ${problem}.`
      }
      const validator = method.args[i]
      if (validator.fromWire !== undefined) m.arguments[i] = validator.fromWire(m.arguments[i])
    }
    if (method.streaming !== streaming) {
      return streaming
        ? `The client attempted to invoke the non-streaming '${m.target}' method with a streaming invocation.`
        : `The client attempted to invoke the streaming '${m.target}' method with a non-streaming invocation.`
    }
    const streamIds = m.streamIds ?? NO_STREAM_IDS
    if (streamIds.length !== method.uploads.length) {
      return `An unexpected error occurred invoking '${m.target}' on the server. HubException: Client sent ${streamIds.length} stream(s), Hub method expects ${method.uploads.length}.`
    }
    for (let i = 0; i < streamIds.length; i++) {
      // A second upload under a live id would orphan the first, whose reader would then wait forever
      if (state.uploads?.has(streamIds[i]) === true || streamIds.indexOf(streamIds[i]) !== i) {
        connection.logRepeatable('info', 'stream-id-in-use', { method: m.target, streamId: streamIds[i] }, 'signalr: invocation refused: a stream id already in use')
        return `Failed to invoke '${m.target}' due to an error on the server. HubException: Stream ID '${streamIds[i]}' is already in use.`
      }
    }
    return method
  }

  /** The upload streams of a bound call, made and registered; a shared empty array for none. */
  private openUploads (connection: Connection, state: DispatchState, m: InvocationMessage | StreamInvocationMessage, method: CompiledMethod): UploadStream[] {
    const streamIds = m.streamIds ?? NO_STREAM_IDS
    if (streamIds.length === 0) return NO_UPLOADS
    const capacity = connection.host.options.streamBufferCapacity
    const uploads = streamIds.map((id, i) => new UploadStream(capacity, method.uploads[i], `upload stream ${i} of '${method.name}'`))
    const open = state.uploads ??= new Map()
    for (let i = 0; i < uploads.length; i++) open.set(streamIds[i], uploads[i])
    return uploads
  }

  private errorText (m: { target: string }, err: unknown, prefix: string): string {
    if (err instanceof HubError) return `${prefix} HubException: ${err.message}`
    if (this.host.enableDetailedErrors) {
      const e = err as Error & { code?: string }
      return `${prefix} ${e?.code ?? e?.name ?? 'Error'}: ${e?.message ?? String(err)}`
    }
    return prefix
  }

  /**
   * A call of a method that needs no authorizer and no uploads runs synchronously: a handler
   * that returns a value gets its Completion in the same turn, with no promise, no closure
   * and no await. Everything else (an authorizer, uploads, a handler that returns a promise)
   * goes on in invokeAsync.
   */
  private invoke (connection: Connection, state: DispatchState, m: InvocationMessage): void {
    const id = m.invocationId
    const method = this.bind(connection, state, m, false)
    if (typeof method === 'string') {
      this.refuse(connection, id, method)
      return
    }
    const uploads = this.openUploads(connection, state, m, method)
    const ctx = new Context(this.host, connection, method.name)
    if (uploads.length === 0) {
      state.active++
      ctx.releaseSlot = state.release
    }
    const observed = connection.host.telemetry.startInvocation(connection, method.name, 'invocation')
    if (method.authorize !== undefined || uploads.length > 0) {
      void this.invokeAsync(connection, state, m, method, ctx, uploads, observed, undefined)
      return
    }
    let result: unknown
    try {
      result = observed.traced ? observed.run(() => method.handler(ctx, ...m.arguments)) : method.handler(ctx, ...m.arguments)
    } catch (err) {
      this.settled(connection, state, m, ctx, uploads, observed, true, err)
      return
    }
    if (isThenable(result)) void this.invokeAsync(connection, state, m, method, ctx, uploads, observed, result)
    else this.settled(connection, state, m, ctx, uploads, observed, false, result)
  }

  /** The rest of invoke(): awaits the authorizer and then the handler, or the promise a handler already returned (`pending`). */
  private async invokeAsync (
    connection: Connection, state: DispatchState, m: InvocationMessage, method: CompiledMethod, ctx: Context,
    uploads: UploadStream[], observed: ObservedInvocation, pending: PromiseLike<unknown> | undefined
  ): Promise<void> {
    let result: unknown
    try {
      if (pending !== undefined) {
        result = await pending
      } else {
        if (method.authorize !== undefined && !await this.authorized(connection, ctx, method, m.arguments)) {
          this.refuse(connection, m.invocationId, `Failed to invoke '${m.target}' because user is unauthorized`)
          this.invocationEnded(connection, state, m, ctx, uploads, observed, 'unauthorized', undefined)
          return
        }
        // One spread, not two, for the common call without uploads
        result = await observed.run(() => uploads.length === 0 ? method.handler(ctx, ...m.arguments) : method.handler(ctx, ...m.arguments, ...uploads))
      }
    } catch (err) {
      this.settled(connection, state, m, ctx, uploads, observed, true, err)
      return
    }
    this.settled(connection, state, m, ctx, uploads, observed, false, result)
  }

  /** A call has returned or thrown: its Completion (unless it was non-blocking), then its end. */
  private settled (
    connection: Connection, state: DispatchState, m: InvocationMessage, ctx: Context, uploads: UploadStream[],
    observed: ObservedInvocation, threw: boolean, value: unknown
  ): void {
    const id = m.invocationId
    try {
      if (threw) {
        connection.logRepeatable('error', 'method-threw', { err: value, method: m.target }, 'signalr: hub method threw')
        this.refuse(connection, id, this.errorText(m, value, `An unexpected error occurred invoking '${m.target}' on the server.`))
      } else if (id !== undefined) {
        this.sendCompletion(connection, { type: MessageType.Completion, invocationId: id, result: value, hasResult: true })
      }
    } finally {
      this.invocationEnded(connection, state, m, ctx, uploads, observed, threw ? 'error' : 'ok', threw ? value : undefined)
    }
  }

  /** The upload streams of a call that ended: their readers see the end. */
  private closeUploads (state: DispatchState, m: InvocationMessage | StreamInvocationMessage, uploads: UploadStream[]): void {
    const streamIds = m.streamIds ?? NO_STREAM_IDS
    for (let i = 0; i < uploads.length; i++) {
      state.uploads?.delete(streamIds[i])
      uploads[i].complete()
    }
  }

  private invocationEnded (
    connection: Connection, state: DispatchState, m: InvocationMessage, ctx: Context, uploads: UploadStream[],
    observed: ObservedInvocation, outcome: InvocationOutcome, failure: unknown
  ): void {
    observed.end(outcome, failure)
    connection.touch()
    this.closeUploads(state, m, uploads)
    const release = ctx.releaseSlot
    ctx.releaseSlot = undefined
    release?.()
  }

  private async authorized (connection: Connection, ctx: Context, method: CompiledMethod, args: unknown[]): Promise<boolean> {
    try {
      return await (method.authorize as NonNullable<CompiledMethod['authorize']>)(ctx, args) === true
    } catch (err) {
      connection.logRepeatable('warn', 'authorize-threw', { err, method: method.name }, 'signalr: method authorization threw; the call is refused')
      return false
    }
  }

  private async stream (connection: Connection, state: DispatchState, m: StreamInvocationMessage): Promise<void> {
    const id = m.invocationId
    if (state.streams?.has(id) === true) {
      this.sendCompletion(connection, { type: MessageType.Completion, invocationId: id, error: `Invocation ID '${id}' is already in use.` })
      return
    }
    const method = this.bind(connection, state, m, true)
    if (typeof method === 'string') {
      this.refuse(connection, id, method)
      return
    }
    const cancel = new AbortController()
    ;(state.streams ??= new Map()).set(id, cancel)
    const signal = AbortSignal.any([connection.signal, cancel.signal])
    const ctx = new Context(this.host, connection, method.name, signal)
    const uploads = this.openUploads(connection, state, m, method)
    let iterator: AsyncIterator<unknown> | undefined
    let error: string | undefined
    const observed = connection.host.telemetry.startInvocation(connection, method.name, 'stream')
    let outcome: InvocationOutcome = 'ok'
    let failure: unknown
    try {
      if (method.authorize !== undefined && !await this.authorized(connection, ctx, method, m.arguments)) {
        error = `Failed to invoke '${m.target}' because user is unauthorized`
        outcome = 'unauthorized'
        return
      }
      let iterable: unknown
      try {
        iterable = await observed.run(() => method.handler(ctx, ...m.arguments, ...uploads))
      } catch (err) {
        // No stream exists yet: ASP.NET Core answers as for a failed invoke
        connection.logRepeatable('error', 'method-threw', { err, method: m.target }, 'signalr: hub method threw')
        error = this.errorText(m, err, `An unexpected error occurred invoking '${m.target}' on the server.`)
        outcome = 'error'
        failure = err
        return
      }
      if (!isAsyncIterable(iterable)) {
        error = `The value returned by the streaming method '${m.target}' is not a ChannelReader<> or IAsyncEnumerable<>.`
        outcome = 'error'
        return
      }
      iterator = iterable[Symbol.asyncIterator]()
      const aborted = new Promise<typeof ABORTED>((resolve) => {
        if (signal.aborted) resolve(ABORTED)
        else signal.addEventListener('abort', () => resolve(ABORTED), { once: true })
      })
      while (true) {
        const it = iterator
        const next = await Promise.race([observed.run(() => it.next()), aborted])
        if (next === ABORTED || next.done === true) break
        connection.send({ type: MessageType.StreamItem, invocationId: id, item: next.value })
        await connection.writable()
      }
    } catch (err) {
      // A cancelled stream ends quietly even if the generator threw on the abort
      if (!signal.aborted) {
        connection.logRepeatable('error', 'stream-threw', { err, method: m.target }, 'signalr: streaming hub method threw')
        error = this.errorText(m, err, 'An error occurred on the server while streaming results.')
        outcome = 'error'
        failure = err
      }
    } finally {
      state.streams?.delete(id)
      this.closeUploads(state, m, uploads)
      // Completion first: a generator blocked on something that ignores the signal must
      // not hold the client's stream open
      this.sendCompletion(connection, error === undefined
        ? { type: MessageType.Completion, invocationId: id, hasResult: false }
        : { type: MessageType.Completion, invocationId: id, error })
      observed.end(outcome === 'ok' && signal.aborted ? 'cancelled' : outcome, failure)
      if (iterator?.return !== undefined) {
        // return() runs the generator's finally blocks
        iterator.return().catch((err: unknown) => connection.log.debug({ err }, 'signalr: stream cleanup threw'))
      }
    }
  }

  private sendCompletion (connection: Connection, completion: CompletionMessage): void {
    try {
      connection.send(completion)
    } catch (err) {
      // The result could not be serialised (a BigInt, a cycle): the caller still gets an answer
      connection.logRepeatable('error', 'unserialisable-result', { err, invocationId: completion.invocationId }, 'signalr: a result could not be serialised')
      connection.send({ type: MessageType.Completion, invocationId: completion.invocationId, error: 'The server could not serialize the result.' })
    }
  }
}

/** What `await` would wait for: an object or function with a callable `then`. */
function isThenable (value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function'
}

function isAsyncIterable (value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Record<symbol, unknown>)[Symbol.asyncIterator] === 'function'
}
