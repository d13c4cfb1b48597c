// One client connection, independent of Fastify and of hubs: ids, handshake, inbound
// reassembly and parsing, outbound writes through the bound transport, client results,
// and the liveness checks run by the shared heartbeat.
import { randomFillSync } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import {
  ClientResultError, ClientResultRejectedError, ClientResultTimeoutError, ClientTimeoutError, ConnectionClosedError, DisconnectTimeoutError, HandshakeError, HubError,
  OutboundBufferFullError, SendTimeoutError, UnserializableMessageError
} from './errors.js'
import type { LifetimeConnection, SendPolicy } from './lifetime/hub-lifetime-manager.js'
import type { ResolvedHubOptions } from './options.js'
import { InboundBuffer } from './inbound-buffer.js'
import { LogLimiter, type LogLevel } from './log-limiter.js'
import { MessageBuffer } from './message-buffer.js'
import { parseHandshakeRequest, writeHandshakeResponse } from './protocol/handshake.js'
import type { HubProtocol } from './protocol/hub-protocol.js'
import { MessageType, type CompletionMessage, type HubMessage, type InvocationMessage } from './protocol/messages.js'
import { SerializedMessage } from './protocol/serialized-message.js'
import type { HandshakeFailure, HubTelemetry, Traffic } from './telemetry/hub-telemetry.js'
import type { Transport, TransportKind } from './transports/transport.js'

/**
 * `joining`: the handshake was valid and the lifetime manager is adding the connection (with
 * a backplane, its subscriptions are being confirmed); the handshake answer waits for it.
 */
export type ConnectionState = 'negotiated' | 'handshaking' | 'joining' | 'connected' | 'closed'

interface ConnectionHostBase {
  readonly options: ResolvedHubOptions
  readonly log: FastifyBaseLogger
  readonly telemetry: HubTelemetry
  /**
   * After a valid handshake (a raw connection: as soon as its first transport request binds
   * it). A hub's host answers with connection.joined() once the lifetime manager has the
   * connection, or connection.refuse(error) if it could not take it.
   */
  onEstablished (connection: Connection): void
  /**
   * Once, when the connection is gone. `error` is undefined for a clean close;
   * `established` says whether the handshake had succeeded (only then did the hub see it).
   */
  onClosed (connection: Connection, error: Error | undefined, established: boolean): void
}

/** What a mapped hub provides to its connections: the handshake and hub protocol run here. */
export interface HubConnectionHost extends ConnectionHostBase {
  readonly raw: false
  readonly protocols: ReadonlyMap<string, HubProtocol>
  onMessages (connection: Connection, messages: HubMessage[]): void
}

/**
 * What a raw connection handler (app.signalrConnection) provides: no handshake, no hub
 * protocol, no Pings and no client timeout, as ASP.NET Core's connection handlers have
 * none (they are the hub layer's). Each message goes to onData as it came.
 */
export interface RawConnectionHost extends ConnectionHostBase {
  readonly raw: true
  /** One WebSocket message or one POST body; `binary` says it came as binary, not text. */
  onData (connection: Connection, data: Buffer, binary: boolean): void
}

export type ConnectionHost = HubConnectionHost | RawConnectionHost

/** Who the connection's user is, from the opening request. */
export type UserIdResolver = (request: FastifyRequest) => string | undefined | null

export interface CloseOptions {
  /** The reason, logged and passed to onDisconnected; its text goes to the client only with detailed errors. */
  error?: Error
  allowReconnect?: boolean
  /** The client asked to close: answer with a plain Close whatever `error` says. */
  clientInitiated?: boolean
  /** The client is not reading: skip the Close message and cut the transport. */
  abort?: boolean
}

interface DrainWaiter {
  resolve: () => void
  evenIfStalled: boolean
}

interface PendingResult {
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
  method: string
}

// Ids are cut from a pool of random bytes refilled 256 ids at a time: one randomFillSync
// call instead of two randomBytes calls per connection
const ID_BYTES = 16
const pool = Buffer.alloc(ID_BYTES * 256)
let poolOffset = pool.length

/** 16 random bytes as base64url: 22 URL-safe characters (signalr-wire.md §1.3). */
export function newConnectionId (): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + ID_BYTES)
  poolOffset += ID_BYTES
  return id
}

/** Unsent bytes beyond transportMaxBufferSize × this end the connection at once. */
export const OUTBOUND_HARD_CAP_FACTOR = 4
/**
 * Messages parsed for one connection before it yields the event loop. A frame may carry
 * hundreds of thousands of tiny messages; they are worked through this many at a time, with
 * the connection's transport paused in between, so that other connections keep being served.
 */
export const MESSAGES_PER_SLICE = 256
/** How often a sender waiting for a congested connection looks again, in ms. */
const DRAIN_POLL_MS = 5
/**
 * A congested connection that takes nothing for this long (at most a quarter of
 * transportSendTimeout) is not reading: senders stop waiting for it, and its backlog is left
 * to the hard cap and the send timeout. Waiting on it would hold every sender up.
 */
const NOT_DRAINING_MS = 500
let resultCounter = 0
/**
 * One Ping per protocol, written once: the heartbeat pings every connection each
 * keepAliveInterval, and at tens of thousands of connections serialising it each time showed
 * as event-loop delay. The bytes are only ever read.
 */
const pingBytes = new WeakMap<HubProtocol, Buffer>()
function ping (protocol: HubProtocol): Buffer {
  let bytes = pingBytes.get(protocol)
  if (bytes === undefined) {
    bytes = protocol.write({ type: MessageType.Ping })
    pingBytes.set(protocol, bytes)
  }
  return bytes
}

export class Connection implements LifetimeConnection {
  readonly connectionId: string
  /** Secret: authorizes the transport requests. Equals connectionId for negotiate v0. */
  readonly token: string
  readonly host: ConnectionHost
  readonly negotiateVersion: number
  private itemsMap: Map<string, unknown> | undefined
  readonly createdAt = Date.now()
  state: ConnectionState = 'negotiated'
  userId: string | undefined
  request: FastifyRequest | undefined
  transport: Transport | undefined
  /** The transport the connection was first bound to; it never changes, even across a stateful reconnect. */
  transportKind: TransportKind | undefined
  protocol: HubProtocol | undefined
  private logger: FastifyBaseLogger | undefined
  /** Negotiated with useStatefulReconnect (WebSockets only; see stateful reconnect). */
  statefulReconnect = false
  /** Set when a transport request has claimed the connection, before it is attached. */
  claimed = false
  /** The hub's counters for this connection's protocol, from the handshake on. */
  private traffic: Traffic | undefined

  /** Made when someone first asks for the signal: most connections never need one. */
  private abortController: AbortController | undefined
  private readonly inbound = new InboundBuffer('text')
  /** Re-entrancy guard: dispatching a message can lead back into process(). */
  private processing = false
  /** Messages parsed since the connection last yielded the event loop. */
  private sliceUsed = 0
  /** Set between a used-up slice and the turn that continues it. */
  private yielding = false
  /**
   * Reasons the client's messages cannot reach the dispatcher now (a call waiting for a
   * slot, say): the client timeout is paused while there is any, as ASP.NET Core pauses it
   * while its receive loop waits on a dispatch.
   */
  private timeoutPauses = 0
  private limiter: LogLimiter | undefined
  // Made when a sender first waits, like the readers below: an idle connection holds no arrays
  private drainWaiters: DrainWaiter[] | undefined
  private drainTimer: NodeJS.Timeout | undefined
  /** Unread bytes at the last drain check, and when they last went down. */
  private drainLastBytes = 0
  private drainProgressAt = 0
  /** Set (to the unread bytes then) once the client took nothing for a while though congested. */
  private notDrainingAt: number | undefined
  private binary = false
  private handshakeStartedAt = 0
  private lastReceivedAt = 0
  private lastSentAt = 0
  private clientTimeoutArmed = false
  private stalledSince: number | undefined
  // Made on first use, like items and the abort signal: an idle connection carries no Maps
  private pendingResultsMap: Map<string, PendingResult> | undefined
  /** Set while the dispatcher has more queued than it lets a client run ahead by. */
  private inboundPaused = false
  /** Whether the transport was last told to stop reading. */
  private readingPaused = false
  private readableWaiters: Array<() => void> | undefined
  /** Present when stateful reconnect is on for this connection. */
  private reconnect: MessageBuffer | undefined
  /** Set while a stateful-reconnect connection has lost its transport and waits for the client. */
  private detachedAt: number | undefined
  /**
   * Messages sent with the `latest` policy while the client was congested, by key: a newer
   * one replaces the older, and all go out, oldest key first, once the client reads again.
   */
  private conflated: Map<string, Buffer> | undefined
  private conflatedHeld = 0
  private volatileDrops = 0
  /** What was sent while joining, for after the handshake answer; it counts toward the hard cap. */
  private early: Buffer[] | undefined
  private earlyBytes = 0

  constructor (host: ConnectionHost, init: { connectionId: string, token: string, negotiateVersion: number }) {
    this.host = host
    this.connectionId = init.connectionId
    this.token = init.token
    this.negotiateVersion = init.negotiateVersion
  }

  /**
   * The opening request's logger, tagged with the connection id. Made on first use: most
   * connections never log, and a child logger per connection costs memory and connect time.
   */
  get log (): FastifyBaseLogger {
    if (this.logger === undefined) {
      if (this.request === undefined) return this.host.log
      this.logger = this.request.log.child({ signalrConnectionId: this.connectionId })
    }
    return this.logger
  }

  /**
   * A line every connection logs (opened, closed), tagged as `log` tags it but without making
   * the child logger: a pino child costs about 700 bytes for as long as the connection lives.
   */
  logTagged (level: 'info' | 'debug', fields: Record<string, unknown>, message: string): void {
    if (this.logger !== undefined) this.logger[level](fields, message)
    else if (this.request === undefined) this.host.log[level](fields, message)
    else this.request.log[level]({ signalrConnectionId: this.connectionId, ...fields }, message)
  }

  /**
   * A log line the client can cause again and again on a live connection: rate-limited per
   * kind, so that a message carrying thousands of them cannot flood the log.
   */
  logRepeatable (level: LogLevel, kind: string, fields: Record<string, unknown>, message: string): void {
    this.limiter ??= new LogLimiter()
    this.limiter.log(this.log, level, kind, fields, message)
  }

  /** Per-connection state for the application (ctx.items). */
  get items (): Map<string, unknown> {
    this.itemsMap ??= new Map()
    return this.itemsMap
  }

  private get pendingResults (): Map<string, PendingResult> {
    this.pendingResultsMap ??= new Map()
    return this.pendingResultsMap
  }

  /** Aborted when the connection ends, for whatever reason. */
  get signal (): AbortSignal {
    if (this.abortController === undefined) {
      this.abortController = new AbortController()
      if (this.state === 'closed') this.abortController.abort(new ConnectionClosedError('The connection was closed.'))
    }
    return this.abortController.signal
  }

  get isBinary (): boolean {
    return this.binary
  }

  /** Bytes received from the client and not parsed yet: bounded by the transport's message limit. */
  get pendingInboundBytes (): number {
    return this.inbound.length
  }

  /** A transport request has taken the connection; from now on no other kind of transport may. */
  claim (kind: TransportKind): void {
    this.claimed = true
    this.transportKind = kind
    // Here, in the transport request's handler: its context is the invocation spans' parent
    this.host.telemetry.transportBound(this)
  }

  /** Binds the first transport request; the handshake clock starts now (a raw connection has no handshake: it is established). */
  attach (transport: Transport, request: FastifyRequest): void {
    this.transport = transport
    this.transportKind = transport.kind
    this.request = request
    this.state = 'handshaking'
    this.handshakeStartedAt = this.lastReceivedAt = this.lastSentAt = Date.now()
    if (this.host.raw) {
      this.state = 'connected'
      this.host.onEstablished(this)
    }
  }

  /**
   * Bytes from the client, in any slicing: records are reassembled across reads. A raw
   * connection takes each call as one message; `binary` says whether it came as binary.
   */
  receive (data: Buffer, binary = false): void {
    if (this.state === 'closed' || data.length === 0) return
    this.lastReceivedAt = Date.now()
    if (this.host.raw) {
      if (this.state === 'connected') this.host.onData(this, data, binary)
      return
    }
    this.inbound.append(data)
    this.process()
  }

  /** The user, from the endpoint's resolver: computed once, when the connection is established, as ASP.NET Core computes UserIdentifier. */
  identify (resolve: UserIdResolver | undefined): void {
    if (resolve === undefined || this.request === undefined) return
    try {
      const id = resolve(this.request)
      this.userId = typeof id === 'string' && id.length > 0 ? id : undefined
    } catch (err) {
      this.log.error({ err }, 'signalr: the userId resolver threw; the connection has no user')
    }
  }

  /** Whether a parse now can make progress, or must refuse a record already too long. */
  private get parsable (): boolean {
    return this.inbound.ready || this.inbound.overLimit(this.host.options.maximumReceiveMessageSize)
  }

  /**
   * Parses and dispatches what has arrived, at most MESSAGES_PER_SLICE messages per turn of
   * the event loop, and not while the dispatcher has too much of this client's input waiting.
   */
  private process (): void {
    if (this.processing) return
    this.processing = true
    try {
      while (this.parsable && !this.inboundPaused && !this.yielding) {
        if (this.state === 'handshaking') {
          if (!this.handshake()) return
          continue
        }
        if (this.state !== 'connected') return
        if (this.sliceUsed >= MESSAGES_PER_SLICE) {
          this.yieldSlice()
          return
        }
        this.parseSlice(MESSAGES_PER_SLICE - this.sliceUsed)
      }
    } finally {
      this.processing = false
      this.wakeReaders()
    }
  }

  private parseSlice (budget: number): void {
    const protocol = this.protocol as HubProtocol
    let messages: HubMessage[]
    let read: number
    try {
      const data = this.inbound.take()
      const result = protocol.parse(data, this.host.options.maximumReceiveMessageSize, budget)
      messages = result.messages
      read = result.read
      this.inbound.consume(result.consumed, read >= budget && result.consumed < data.length)
      if (this.traffic !== undefined) {
        this.traffic.messagesReceived += read
        this.traffic.bytesReceived += result.consumed
      }
    } catch (err) {
      this.log.warn({ err }, 'signalr: closing a connection that sent an invalid message')
      this.inbound.clear()
      // ASP.NET Core allows a reconnect after a bad or oversize message: the next
      // connection starts clean
      this.close({ error: err as Error, allowReconnect: true })
      return
    }
    this.sliceUsed += read
    if (messages.length === 0) return
    let deliver = messages
    if (this.reconnect !== undefined) {
      deliver = []
      for (const m of messages) if (this.sequence(m)) deliver.push(m)
      if (this.state !== 'connected') return
    }
    for (const m of deliver) {
      if (m.type === MessageType.Ping) this.clientTimeoutArmed = true
    }
    if (deliver.length > 0) (this.host as HubConnectionHost).onMessages(this, deliver)
  }

  /** The slice is used up: stop reading the client and continue on the next turn. */
  private yieldSlice (): void {
    this.yielding = true
    this.updateReading()
    setImmediate(() => {
      this.yielding = false
      this.sliceUsed = 0
      if (this.state === 'closed') return
      this.updateReading()
      this.process()
    })
  }

  /** The transport reads only while nothing holds the client's input back. */
  private updateReading (): void {
    const paused = this.inboundPaused || this.yielding
    if (paused === this.readingPaused) return
    this.readingPaused = paused
    if (paused) this.transport?.pauseReading?.()
    else this.transport?.resumeReading?.()
  }

  private wakeReaders (): void {
    if (this.readableWaiters === undefined || !this.idleInbound) return
    const waiters = this.readableWaiters
    this.readableWaiters = undefined
    for (const w of waiters) w()
  }

  /** Nothing of the client's input waits to be parsed or let through. */
  private get idleInbound (): boolean {
    return this.state === 'closed' || (!this.inboundPaused && !this.yielding && !this.parsable)
  }

  /** Stateful reconnect: consumes Ack and Sequence, drops replayed duplicates. */
  private sequence (m: HubMessage): boolean {
    const buffer = this.reconnect as MessageBuffer
    switch (m.type) {
      case MessageType.Ack:
        for (const bytes of buffer.ack(m.sequenceId)) if (this.transport !== undefined) this.sendFrame(bytes)
        return false
      case MessageType.Sequence:
        try {
          buffer.resetSequence(m.sequenceId)
        } catch (err) {
          this.log.warn({ err }, 'signalr: invalid Sequence message')
          this.close({ error: err as Error, allowReconnect: true })
        }
        return false
      default:
        return m.type > MessageType.CancelInvocation || buffer.shouldProcess()
    }
  }

  /** Returns true when the handshake is done and the connection may parse hub messages. */
  private handshake (): boolean {
    let parsed
    try {
      parsed = parseHandshakeRequest(this.inbound.take(), this.host.options.maximumReceiveMessageSize)
    } catch (err) {
      this.rejectHandshake((err as Error).message, 'invalid')
      return false
    }
    if (parsed.request === undefined) {
      this.inbound.consume(0, false)
      return false
    }
    this.inbound.consume(parsed.consumed, false)
    const { protocol: name, version } = parsed.request
    const protocol = (this.host as HubConnectionHost).protocols.get(name.toLowerCase())
    if (protocol === undefined) {
      this.rejectHandshake(`The protocol '${name}' is not supported.`, 'unsupported_protocol')
      return false
    }
    if (version > protocol.version) {
      this.rejectHandshake(`The server does not support version ${version} of the '${name}' protocol.`, 'unsupported_version')
      return false
    }
    if (protocol.transferFormat === 'Binary' && this.transport?.kind === 'ServerSentEvents') {
      this.rejectHandshake(`Cannot use the '${name}' protocol on the current transport. The transport does not support 'Binary' transfer format.`, 'unsupported_transfer_format')
      return false
    }
    this.protocol = protocol
    this.binary = protocol.transferFormat === 'Binary'
    this.inbound.setFraming(this.binary ? 'binary' : 'text')
    this.state = 'joining'
    // Stateful reconnect needs both sides: negotiated, a version-2 handshake, and WebSockets
    if (this.statefulReconnect && version >= 2 && this.transport?.kind === 'WebSockets') {
      this.reconnect = new MessageBuffer(this.host.options.statefulReconnectBufferSize)
    }
    this.traffic = this.host.telemetry.trafficFor(protocol.name)
    this.host.onEstablished(this)
    // Anything the client sent after its handshake is parsed once it has joined
    return (this.state as ConnectionState) === 'connected'
  }

  /**
   * The lifetime manager has the connection: now the client gets its handshake answer. ASP.NET
   * Core answers first and subscribes after, so a message sent from another server to a client
   * whose start() has just resolved can miss it; answering last closes that window. What was
   * sent to the connection meanwhile (a broadcast, say) follows the answer.
   */
  joined (): void {
    if (this.state !== 'joining') return
    this.state = 'connected'
    const early = this.takeEarly()
    // The .NET server sets the transfer format before it answers, so a MessagePack
    // connection gets its `{}` in a binary frame
    this.sendFrame(writeHandshakeResponse(), this.binary, true)
    for (const bytes of early ?? []) this.sendFrame(bytes)
    this.process()
  }

  /** What was held while joining, no longer counted as unread. */
  private takeEarly (): Buffer[] | undefined {
    const early = this.early
    this.early = undefined
    this.earlyBytes = 0
    return early
  }

  /** The lifetime manager could not take the connection: the client's start() fails with the reason. */
  refuse (error: Error): void {
    if (this.state !== 'joining') return
    const detail = this.host.options.enableDetailedErrors ? ` ${(error as { code?: string }).code ?? error.name}: ${error.message}` : ''
    this.rejectHandshake(`An unexpected error occurred during connection handshake.${detail}`, 'refused', error)
  }

  private rejectHandshake (reason: string, failure: HandshakeFailure, cause?: Error): void {
    this.host.telemetry.handshakeFailed(this, failure)
    this.log.warn({ reason }, 'signalr: handshake rejected')
    // Nothing held for a joining connection goes out: the client never joined
    this.takeEarly()
    this.sendFrame(writeHandshakeResponse(reason), this.binary, true)
    this.close({ error: cause ?? new HandshakeError(reason) })
  }

  /** LifetimeConnection: queue an already-serialised message, or drop or hold it by `policy`. */
  write (message: SerializedMessage, policy?: SendPolicy): boolean {
    if (this.state !== 'connected' && this.state !== 'joining') return false
    let bytes: Buffer
    try {
      bytes = message.bytesFor(this.protocol as HubProtocol)
    } catch (err) {
      // The sender's promise rejects with this once (see SerializedMessage.error): one log
      // line per target of a broadcast would say nothing more
      this.log.debug({ err }, 'signalr: a message could not be serialised and was not sent')
      return false
    }
    if (policy !== undefined) {
      if (policy.kind === 'volatile') {
        if (this.backlogged) {
          this.volatileDrops++
          return true
        }
      } else if (this.backlogged || this.conflated !== undefined) {
        // Once anything is held, later keyed sends wait behind it, so that keys keep their order
        this.hold(policy.key, bytes)
        return true
      }
    }
    this.emit(bytes, message.message.type <= MessageType.CancelInvocation)
    return true
  }

  /**
   * What the send policies look at: the client has more than transportMaxBufferSize unread
   * (bytes its socket or poll holds, and with stateful reconnect the messages it has not
   * acknowledged), or has no transport while it may still come back.
   */
  private get backlogged (): boolean {
    return this.transport === undefined || this.unreadBytes() > this.host.options.transportMaxBufferSize
  }

  private hold (key: string, bytes: Buffer): void {
    const held = this.conflated ??= new Map()
    const older = held.get(key)
    if (older !== undefined) {
      this.conflatedHeld -= older.length
      // Deleted, not overwritten: the key moves to the end, after keys sent since
      held.delete(key)
    }
    held.set(key, bytes)
    this.conflatedHeld += bytes.length
    // Many distinct keys still cannot grow without bound: held bytes count toward the hard cap
    if (this.overHardCap()) return
    if (this.transport !== undefined) this.startDrainTimer()
  }

  /** The client reads again (or came back): everything held goes out, in key order. */
  private flushConflated (): void {
    const held = this.conflated
    if (held === undefined) return
    this.conflated = undefined
    this.conflatedHeld = 0
    for (const bytes of held.values()) this.emit(bytes, true)
  }

  /** Bytes held back by the `latest` policy and messages dropped by `volatile`, for tests and metrics. */
  get policyStats (): { heldMessages: number, heldBytes: number, volatileDrops: number } {
    return { heldMessages: this.conflated?.size ?? 0, heldBytes: this.conflatedHeld, volatileDrops: this.volatileDrops }
  }

  /** Serialises and queues one message; throws what the protocol writer throws. */
  send (message: HubMessage): boolean {
    if (this.state !== 'connected') return false
    this.emit((this.protocol as HubProtocol).write(message), message.type <= MessageType.CancelInvocation)
    return true
  }

  /** Trackable messages go through the replay buffer when stateful reconnect is on. */
  private emit (bytes: Buffer, trackable: boolean): void {
    if (trackable && this.reconnect !== undefined) {
      // Also while no transport is attached: what waits for the client is bounded the same way
      if (this.overHardCap()) return
      const now = this.reconnect.track(bytes)
      if (now !== undefined && this.transport !== undefined) this.sendFrame(now)
      return
    }
    if (this.transport !== undefined) this.sendFrame(bytes)
  }

  /**
   * What the client has left unread: bytes handed to its socket, or waiting for its poll,
   * and with stateful reconnect the messages waiting for its Acks. This turn's unflushed
   * batch does not count: it has not been offered to the client yet.
   */
  private unreadBytes (): number {
    return (this.transport?.bufferedBytes() ?? 0) + (this.reconnect?.waitingBytes ?? 0) + this.earlyBytes
  }

  /** What the client has left unread (see unreadBytes): for telemetry and the admin view. */
  get bytesWaiting (): number {
    return this.unreadBytes()
  }

  /**
   * The hard bound on a slow consumer: far past what the send-timeout check tolerates, the
   * connection is cut at once instead of growing the server's memory. Only what was unread
   * before this send counts, so one large message to a client that reads is fine. Hub
   * senders wait while a reading client is congested, so they cannot push it here.
   */
  private overHardCap (): boolean {
    const cap = this.host.options.transportMaxBufferSize * OUTBOUND_HARD_CAP_FACTOR
    const unread = this.unreadBytes() + this.conflatedHeld
    if (unread <= cap) return false
    this.log.warn({ buffered: unread }, 'signalr: closing a connection whose outbound buffer is full')
    this.close({ error: new OutboundBufferFullError(cap), abort: true })
    return true
  }

  private sendFrame (bytes: Buffer, binary = this.binary, handshakeAnswer = false): void {
    const transport = this.transport
    if (transport === undefined || this.overHardCap()) return
    if (this.state === 'joining' && !handshakeAnswer) {
      (this.early ??= []).push(bytes)
      this.earlyBytes += bytes.length
      return
    }
    this.lastSentAt = Date.now()
    // The handshake is no hub message: the traffic counters count hub messages only, both ways
    if (this.traffic !== undefined && !handshakeAnswer) {
      this.traffic.messagesSent++
      this.traffic.bytesSent += bytes.length
    }
    transport.send(bytes, binary)
  }

  /**
   * A raw connection's message, as it is: a text or binary WebSocket message, an SSE event,
   * bytes for the next poll. The same outbound bounds as hub messages apply; false once closed.
   */
  sendRaw (data: Buffer, binary: boolean): boolean {
    if (this.state !== 'connected') return false
    this.sendFrame(data, binary)
    return true
  }

  /**
   * LifetimeConnection: the client has more than transportMaxBufferSize unread (or, with
   * stateful reconnect, messages wait for its Acks or for it to come back). Senders then
   * wait for drained() before they send again, so that production slows to the client's
   * pace instead of filling the server's memory.
   */
  get congested (): boolean {
    if (this.state !== 'connected') return false
    if ((this.reconnect?.waitingBytes ?? 0) > 0) return true
    const transport = this.transport
    return transport !== undefined && transport.bufferedBytes() > this.host.options.transportMaxBufferSize
  }

  /**
   * LifetimeConnection: resolves once the connection is no longer congested, or has ended,
   * or turns out not to be reading at all (it took nothing for a while): a sender is paced
   * to a slow reader, but never held up by a dead one, which the hard cap and the send
   * timeout deal with.
   */
  async drained (): Promise<void> {
    if (!this.congested) return
    if (this.notDrainingAt !== undefined) {
      if (this.unreadBytes() >= this.notDrainingAt) return
      // It took something since: it reads after all
      this.notDrainingAt = undefined
    }
    await this.waitForDrain(false)
  }

  /**
   * Streams await it after each item, so that a fast generator slows to the client's pace;
   * a stream waits even for a client that stopped reading, until the send timeout ends it.
   */
  async writable (): Promise<void> {
    if (!this.congested) return
    await this.waitForDrain(true)
  }

  private async waitForDrain (evenIfStalled: boolean): Promise<void> {
    await new Promise<void>((resolve) => {
      (this.drainWaiters ??= []).push({ resolve, evenIfStalled })
      this.startDrainTimer()
    })
  }

  /** One timer per congested connection, however many senders wait on it or messages it holds. */
  private startDrainTimer (): void {
    if (this.drainTimer !== undefined) return
    this.drainLastBytes = this.unreadBytes()
    this.drainProgressAt = Date.now()
    this.drainTimer = setInterval(() => { this.checkDrain() }, DRAIN_POLL_MS)
  }

  private checkDrain (): void {
    if (this.conflated !== undefined && !this.backlogged) this.flushConflated()
    if (!this.congested) {
      this.notDrainingAt = undefined
      this.wakeDrainWaiters(true)
      return
    }
    const now = Date.now()
    const unread = this.unreadBytes()
    if (unread < this.drainLastBytes) this.drainProgressAt = now
    this.drainLastBytes = unread
    if (this.notDrainingAt === undefined && now - this.drainProgressAt > Math.min(NOT_DRAINING_MS, this.host.options.transportSendTimeout / 4)) {
      this.notDrainingAt = unread
      this.log.debug({ buffered: unread }, 'signalr: a congested client is not reading; senders no longer wait for it')
      this.wakeDrainWaiters(false)
    }
  }

  /** Wakes the senders waiting for this connection (all of them, or those that give up on a dead reader). */
  private wakeDrainWaiters (all = true): void {
    const keep: DrainWaiter[] = []
    for (const w of this.drainWaiters ?? []) {
      if (all || !w.evenIfStalled) w.resolve()
      else keep.push(w)
    }
    this.drainWaiters = keep.length === 0 ? undefined : keep
    // Held messages keep it going, except while there is no transport to flush them to
    const holding = this.conflated !== undefined && this.transport !== undefined && this.state === 'connected'
    if (keep.length === 0 && !holding && this.drainTimer !== undefined) {
      clearInterval(this.drainTimer)
      this.drainTimer = undefined
    }
  }

  /**
   * The dispatcher has too much of this client's input waiting: stop parsing and reading it
   * (ASP.NET Core stops reading its pipe the same way), so a flood costs the client, not
   * our memory.
   */
  pauseInbound (): void {
    if (this.inboundPaused) return
    this.inboundPaused = true
    this.updateReading()
  }

  resumeInbound (): void {
    if (!this.inboundPaused) return
    this.inboundPaused = false
    this.updateReading()
    // What arrived meanwhile, or was left unparsed, goes on now
    this.process()
  }

  /**
   * Resolves once everything received so far has been parsed and let through to the
   * dispatcher (or the connection has ended): POST answers wait for it, so a client that
   * sends faster than it is served is held back as a paused socket would be.
   */
  async readable (): Promise<void> {
    if (this.idleInbound) return
    await new Promise<void>((resolve) => { (this.readableWaiters ??= []).push(resolve) })
  }

  /** The dispatcher cannot take this client's next message yet: its silence is not its fault. */
  pauseClientTimeout (): void {
    this.timeoutPauses++
  }

  resumeClientTimeout (): void {
    if (this.timeoutPauses === 0) return
    // The clock starts afresh, as ASP.NET Core's BeginClientTimeout restarts it
    if (--this.timeoutPauses === 0) this.lastReceivedAt = Date.now()
  }

  /** LifetimeConnection: a client result. */
  async invokeClient (message: Omit<InvocationMessage, 'invocationId' | 'type'>, timeoutMs: number): Promise<unknown> {
    if (this.state !== 'connected') throw new ClientResultError(`Connection '${this.connectionId}' disconnected.`)
    // 's' keeps server ids apart from the client's own numeric invocation and stream ids
    const invocationId = `s${++resultCounter}`
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pendingResults.delete(invocationId)) reject(new ClientResultTimeoutError(message.target, timeoutMs))
      }, timeoutMs)
      this.pendingResults.set(invocationId, { resolve, reject, timer, method: message.target })
      try {
        this.send({ type: MessageType.Invocation, invocationId, target: message.target, arguments: message.arguments })
      } catch (err) {
        clearTimeout(timer)
        this.pendingResults.delete(invocationId)
        reject(new UnserializableMessageError((this.protocol as HubProtocol).name, (err as Error).message, { cause: err }))
      }
    })
  }

  /** Routes a client's Completion to a pending client result; false if none was waiting. */
  completeClientResult (completion: CompletionMessage): boolean {
    const pending = this.pendingResultsMap?.get(completion.invocationId)
    if (pending === undefined) return false
    this.pendingResults.delete(completion.invocationId)
    clearTimeout(pending.timer)
    if (completion.error !== undefined) pending.reject(new ClientResultRejectedError(completion.error))
    else pending.resolve(completion.result ?? null)
    return true
  }

  /**
   * Ends the connection from the server side: a Close message first (when the handshake
   * is done), then the transport, then the cleanup.
   */
  close (options: CloseOptions = {}): void {
    if (this.state === 'closed') return
    if (options.abort === true) {
      this.transport?.abort()
      this.finish(options.error)
      return
    }
    if (this.state === 'connected' && this.transport !== undefined && !this.host.raw) {
      const error = options.error === undefined || options.clientInitiated === true ? undefined : closeErrorText(options.error, this.host.options.enableDetailedErrors)
      try {
        this.send({ type: MessageType.Close, error, allowReconnect: options.allowReconnect === true })
      } catch (err) {
        this.log.debug({ err }, 'signalr: the Close message could not be written')
      }
    }
    // A raw connection has no Close message: its transport says what it can of the error
    this.transport?.close(this.host.raw ? options.error : undefined)
    this.finish(options.error)
  }

  /**
   * The transport failed without a clean close. With stateful reconnect the connection
   * waits up to disconnectTimeout for the client to come back on a new transport.
   */
  transportLost (error: Error): void {
    if (this.state === 'connected' && this.reconnect !== undefined) {
      this.log.debug({ err: error }, 'signalr: transport lost; waiting for a stateful reconnect')
      this.transport = undefined
      this.claimed = false
      this.detachedAt = Date.now()
      return
    }
    this.transportClosed(error)
  }

  /** Whether a new transport request may resume this connection (stateful reconnect). */
  get awaitingReconnect (): boolean {
    return this.state === 'connected' && this.reconnect !== undefined && this.transport === undefined
  }

  /** A stateful reconnect: no new handshake; Sequence first, then every unacknowledged message. */
  reattach (transport: Transport): void {
    const buffer = this.reconnect as MessageBuffer
    this.transport = transport
    this.claimed = true
    this.detachedAt = undefined
    this.lastReceivedAt = Date.now()
    const { sequenceId, messages } = buffer.replay()
    this.sendFrame((this.protocol as HubProtocol).write({ type: MessageType.Sequence, sequenceId }))
    for (const bytes of messages) this.sendFrame(bytes)
    this.log.debug({ sequenceId, replayed: messages.length }, 'signalr: stateful reconnect')
    // What `latest` held while the client was away goes after the replay, as newer messages
    if (this.conflated !== undefined) this.startDrainTimer()
  }

  /** The transport is gone (the client left, or the socket failed): clean up, nothing to send. */
  transportClosed (error?: Error): void {
    if (this.state === 'closed') return
    this.finish(error)
  }

  private finish (error: Error | undefined): void {
    // A joining connection is the hub's already: its lifetime manager has it, or is adding it
    const wasEstablished = this.state === 'connected' || this.state === 'joining'
    this.takeEarly()
    this.state = 'closed'
    this.inbound.clear()
    this.conflated = undefined
    this.conflatedHeld = 0
    this.inboundPaused = false
    this.wakeReaders()
    this.wakeDrainWaiters()
    for (const [id, pending] of this.pendingResultsMap ?? []) {
      clearTimeout(pending.timer)
      pending.reject(new ClientResultError(`Connection '${this.connectionId}' disconnected.`))
      this.pendingResults.delete(id)
    }
    this.limiter?.flush(this.log)
    this.abortController?.abort(error ?? new ConnectionClosedError('The connection was closed.'))
    this.host.onClosed(this, error, wasEstablished)
  }

  /** Called by the shared heartbeat. */
  tick (now: number): void {
    const o = this.host.options
    switch (this.state) {
      case 'negotiated':
        // Negotiated but never connected: ASP.NET Core drops it after DisconnectTimeout
        if (now - this.createdAt > o.disconnectTimeout) this.finish(undefined)
        return
      case 'handshaking':
      case 'joining': {
        const state = this.state
        this.transport?.tick?.(now)
        if (this.state !== state) return
        // Joining counts against the handshake timeout: a backplane that cannot confirm in time fails the client's start()
        if (now - this.handshakeStartedAt > o.handshakeTimeout) this.rejectHandshake('Handshake was canceled.', 'timeout')
        return
      }
      case 'connected': {
        const transport = this.transport
        if (transport === undefined) {
          if (now - (this.detachedAt ?? now) > o.disconnectTimeout) {
            this.log.info('signalr: the client did not come back in time for a stateful reconnect')
            this.finish(new DisconnectTimeoutError('The client did not reconnect within the disconnect timeout.'))
          }
          return
        }
        transport.tick?.(now)
        if (this.state !== 'connected') return
        // Raw connections have neither: they are the hub layer's
        if (!transport.inherentKeepAlive && !this.host.raw) {
          if (now - this.lastSentAt >= o.keepAliveInterval) {
            this.sendFrame(ping(this.protocol as HubProtocol))
          }
          // Armed only once the client has pinged, and paused while its messages cannot be taken
          if (this.clientTimeoutArmed && this.timeoutPauses === 0 && now - this.lastReceivedAt > o.clientTimeoutInterval) {
            this.log.info('signalr: closing a connection whose client timed out')
            this.close({ error: new ClientTimeoutError(), allowReconnect: true })
            return
          }
        }
        const ack = this.reconnect?.pendingAck()
        if (ack !== undefined) this.sendFrame((this.protocol as HubProtocol).write({ type: MessageType.Ack, sequenceId: ack }))
        // Messages waiting for the client's Acks count as unread, like bytes the socket holds
        if (transport.bufferedBytes() > o.transportMaxBufferSize || (this.reconnect?.waitingBytes ?? 0) > 0) {
          this.stalledSince ??= now
          if (now - this.stalledSince > o.transportSendTimeout) {
            this.log.warn({ buffered: transport.bufferedBytes() }, 'signalr: closing a connection whose client stopped reading')
            this.close({ error: new SendTimeoutError(o.transportSendTimeout), abort: true })
          }
        } else {
          this.stalledSince = undefined
        }
      }
    }
  }

  /** Called when a message arrives, so a long dispatch does not count as client silence. */
  touch (): void {
    this.lastReceivedAt = Date.now()
  }
}

/** The Close error text: ASP.NET Core's fixed sentence, with the cause only when detailed errors are on. */
export function closeErrorText (error: Error, detailed: boolean): string {
  const base = 'Connection closed with an error.'
  // Like a HubException in ASP.NET Core, an application's HubError is always shown
  if (error instanceof HubError) return `${base} HubException: ${error.message}`
  return detailed ? `${base} ${(error as { code?: string }).code ?? error.name}: ${error.message}` : base
}
