// One client connection, independent of Fastify and of hubs: ids, handshake, inbound
// reassembly and parsing, outbound writes through the bound transport, client results,
// and the liveness checks run by the shared heartbeat.
import { randomFillSync } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import {
  ClientResultError, ClientResultRejectedError, ClientResultTimeoutError, ClientTimeoutError, ConnectionClosedError, HandshakeError, HubError,
  OutboundBufferFullError, SendTimeoutError
} from './errors.js'
import type { LifetimeConnection } from './lifetime/hub-lifetime-manager.js'
import type { ResolvedHubOptions } from './options.js'
import { MessageBuffer } from './message-buffer.js'
import { parseHandshakeRequest, writeHandshakeResponse } from './protocol/handshake.js'
import type { HubProtocol } from './protocol/hub-protocol.js'
import { MessageType, type CompletionMessage, type HubMessage, type InvocationMessage } from './protocol/messages.js'
import { SerializedMessage } from './protocol/serialized-message.js'
import type { Transport } from './transports/transport.js'

export type ConnectionState = 'negotiated' | 'handshaking' | 'connected' | 'closed'

/** What the mapped hub provides to its connections. */
export interface ConnectionHost {
  readonly options: ResolvedHubOptions
  readonly protocols: ReadonlyMap<string, HubProtocol>
  readonly log: FastifyBaseLogger
  /** After a successful handshake. */
  onEstablished (connection: Connection): void
  onMessages (connection: Connection, messages: HubMessage[]): void
  /**
   * Once, when the connection is gone. `error` is undefined for a clean close;
   * `established` says whether the handshake had succeeded (only then did the hub see it).
   */
  onClosed (connection: Connection, error: Error | undefined, established: boolean): void
}

export interface CloseOptions {
  /** The reason, logged and passed to onDisconnected; its text goes to the client only with detailed errors. */
  error?: Error
  allowReconnect?: boolean
  /** The client asked to close: answer with a plain Close whatever `error` says. */
  clientInitiated?: boolean
  /** The client is not reading: skip the Close message and cut the transport. */
  abort?: boolean
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

const EMPTY = Buffer.alloc(0)
/** Unsent bytes beyond transportMaxBufferSize × this end the connection at once. */
export const OUTBOUND_HARD_CAP_FACTOR = 4
let resultCounter = 0

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
  protocol: HubProtocol | undefined
  private logger: FastifyBaseLogger | undefined
  /** Negotiated with useStatefulReconnect (WebSockets only; see stateful reconnect). */
  statefulReconnect = false
  /** Set when a transport request has claimed the connection, before it is attached. */
  claimed = false
  /** True while the dispatcher runs a message: the client timeout clock is paused (as in .NET). */
  busy = false

  /** Made when someone first asks for the signal: most connections never need one. */
  private abortController: AbortController | undefined
  private inbound: Buffer = EMPTY
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
  private readableWaiters: Array<() => void> = []
  /** Present when stateful reconnect is on for this connection. */
  private reconnect: MessageBuffer | undefined
  /** Set while a stateful-reconnect connection has lost its transport and waits for the client. */
  private detachedAt: number | undefined

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

  /** Binds the first transport request; the handshake clock starts now. */
  attach (transport: Transport, request: FastifyRequest): void {
    this.transport = transport
    this.request = request
    this.state = 'handshaking'
    this.handshakeStartedAt = this.lastReceivedAt = this.lastSentAt = Date.now()
  }

  /** Bytes from the client, in any slicing: records are reassembled across reads. */
  receive (data: Buffer): void {
    if (this.state === 'closed' || data.length === 0) return
    this.lastReceivedAt = Date.now()
    this.inbound = this.inbound.length === 0 ? data : Buffer.concat([this.inbound, data])
    if (this.state === 'handshaking' && !this.handshake()) return
    if (this.state !== 'connected' || this.inbound.length === 0) return
    const protocol = this.protocol as HubProtocol
    let messages: HubMessage[]
    try {
      const result = protocol.parse(this.inbound, this.host.options.maximumReceiveMessageSize)
      messages = result.messages
      this.inbound = result.consumed === this.inbound.length ? EMPTY : this.inbound.subarray(result.consumed)
    } catch (err) {
      this.log.warn({ err }, 'signalr: closing a connection that sent an invalid message')
      this.inbound = EMPTY
      // ASP.NET Core allows a reconnect after a bad or oversize message: the next
      // connection starts clean
      this.close({ error: err as Error, allowReconnect: true })
      return
    }
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
    if (deliver.length > 0) this.host.onMessages(this, deliver)
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
      parsed = parseHandshakeRequest(this.inbound, this.host.options.maximumReceiveMessageSize)
    } catch (err) {
      this.rejectHandshake((err as Error).message)
      return false
    }
    if (parsed.request === undefined) return false
    this.inbound = this.inbound.subarray(parsed.consumed)
    const { protocol: name, version } = parsed.request
    const protocol = this.host.protocols.get(name.toLowerCase())
    if (protocol === undefined) {
      this.rejectHandshake(`The protocol '${name}' is not supported.`)
      return false
    }
    if (version > protocol.version) {
      this.rejectHandshake(`The server does not support version ${version} of the '${name}' protocol.`)
      return false
    }
    if (protocol.transferFormat === 'Binary' && this.transport?.kind === 'ServerSentEvents') {
      this.rejectHandshake(`Cannot use the '${name}' protocol on the current transport. The transport does not support 'Binary' transfer format.`)
      return false
    }
    this.protocol = protocol
    this.binary = protocol.transferFormat === 'Binary'
    this.state = 'connected'
    // Stateful reconnect needs both sides: negotiated, a version-2 handshake, and WebSockets
    if (this.statefulReconnect && version >= 2 && this.transport?.kind === 'WebSockets') {
      this.reconnect = new MessageBuffer(this.host.options.statefulReconnectBufferSize)
    }
    // The .NET server sets the transfer format before it answers, so a MessagePack
    // connection gets its `{}` in a binary frame
    this.sendFrame(writeHandshakeResponse())
    this.host.onEstablished(this)
    return true
  }

  private rejectHandshake (reason: string): void {
    this.log.warn({ reason }, 'signalr: handshake rejected')
    this.sendFrame(writeHandshakeResponse(reason))
    this.close({ error: new HandshakeError(reason) })
  }

  /** LifetimeConnection: queue an already-serialised message. */
  write (message: SerializedMessage): boolean {
    if (this.state !== 'connected') return false
    let bytes: Buffer
    try {
      bytes = message.bytesFor(this.protocol as HubProtocol)
    } catch (err) {
      this.log.error({ err }, 'signalr: a message could not be serialised and was not sent')
      return false
    }
    this.emit(bytes, message.message.type <= MessageType.CancelInvocation)
    return true
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
      const now = this.reconnect.track(bytes)
      if (now !== undefined && this.transport !== undefined) this.sendFrame(now)
      return
    }
    if (this.transport !== undefined) this.sendFrame(bytes)
  }

  private sendFrame (bytes: Buffer): void {
    const transport = this.transport
    if (transport === undefined) return
    this.lastSentAt = Date.now()
    transport.send(bytes, this.binary)
    // The hard bound on a slow consumer: far past what the send-timeout check tolerates,
    // the connection is cut at once instead of growing the server's memory
    // (the message just queued does not count: one large result to a fast reader is fine)
    const cap = this.host.options.transportMaxBufferSize * OUTBOUND_HARD_CAP_FACTOR
    if (transport.bufferedBytes() - bytes.length > cap && this.state !== 'closed') {
      this.log.warn({ buffered: transport.bufferedBytes() }, 'signalr: closing a connection whose outbound buffer is full')
      this.close({ error: new OutboundBufferFullError(cap), abort: true })
    }
  }

  /**
   * Resolves once the client has read enough that another message will not push the
   * connection toward its outbound bounds, or once the connection ends. Streams await it so
   * that a fast generator slows down to the client's pace instead of being cut off.
   */
  async writable (): Promise<void> {
    const limit = this.host.options.transportMaxBufferSize
    while (this.state === 'connected' && (this.transport === undefined || this.transport.bufferedBytes() > limit)) {
      await new Promise((resolve) => { setTimeout(resolve, 10) })
    }
  }

  /**
   * The dispatcher has too much of this client's input waiting: stop reading it (ASP.NET
   * Core stops reading its pipe the same way), so a flood costs the client, not our memory.
   */
  pauseInbound (): void {
    if (this.inboundPaused) return
    this.inboundPaused = true
    this.transport?.pauseReading?.()
  }

  resumeInbound (): void {
    if (!this.inboundPaused) return
    this.inboundPaused = false
    this.transport?.resumeReading?.()
    const waiters = this.readableWaiters
    this.readableWaiters = []
    for (const w of waiters) w()
  }

  /** Resolves when the connection takes input again (or has ended): POST answers wait for it. */
  async readable (): Promise<void> {
    if (!this.inboundPaused || this.state === 'closed') return
    await new Promise<void>((resolve) => { this.readableWaiters.push(resolve) })
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
        reject(err as Error)
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
    if (this.state === 'connected' && this.transport !== undefined) {
      const error = options.error === undefined || options.clientInitiated === true ? undefined : closeErrorText(options.error, this.host.options.enableDetailedErrors)
      try {
        this.send({ type: MessageType.Close, error, allowReconnect: options.allowReconnect === true })
      } catch (err) {
        this.log.debug({ err }, 'signalr: the Close message could not be written')
      }
    }
    this.transport?.close()
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
  }

  /** The transport is gone (the client left, or the socket failed): clean up, nothing to send. */
  transportClosed (error?: Error): void {
    if (this.state === 'closed') return
    this.finish(error)
  }

  private finish (error: Error | undefined): void {
    const wasEstablished = this.state === 'connected'
    this.state = 'closed'
    this.inbound = EMPTY
    this.resumeInbound()
    for (const [id, pending] of this.pendingResultsMap ?? []) {
      clearTimeout(pending.timer)
      pending.reject(new ClientResultError(`Connection '${this.connectionId}' disconnected.`))
      this.pendingResults.delete(id)
    }
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
        this.transport?.tick?.(now)
        if (this.state !== 'handshaking') return
        if (now - this.handshakeStartedAt > o.handshakeTimeout) this.rejectHandshake('Handshake was canceled.')
        return
      case 'connected': {
        const transport = this.transport
        if (transport === undefined) {
          if (now - (this.detachedAt ?? now) > o.disconnectTimeout) {
            this.log.info('signalr: the client did not come back in time for a stateful reconnect')
            this.finish(new ConnectionClosedError('The client did not reconnect within the disconnect timeout.'))
          }
          return
        }
        transport.tick?.(now)
        if (this.state !== 'connected') return
        if (!transport.inherentKeepAlive) {
          if (now - this.lastSentAt >= o.keepAliveInterval) {
            this.sendFrame((this.protocol as HubProtocol).write({ type: MessageType.Ping }))
          }
          // Armed only once the client has pinged, and paused while a message is dispatched
          if (this.clientTimeoutArmed && !this.busy && now - this.lastReceivedAt > o.clientTimeoutInterval) {
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
