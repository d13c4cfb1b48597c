// The Long Polling transport (server to client): each GET takes every whole message queued
// so far, or waits for one up to longPollTimeout. Between polls the connection is inactive,
// and disconnectTimeout without a poll disposes it (signalr-wire.md §2.3).
import type { Connection } from '../connection.js'
import { DisconnectTimeoutError } from '../errors.js'
import type { Transport } from './transport.js'

/**
 * What a poll answers through: a Fastify reply, or, for a poll forwarded from another server,
 * one that carries the answer back over the backplane (see forwarded.ts).
 */
export interface PollReply {
  headers (values: Record<string, string>): PollReply
  header (key: string, value: string): PollReply
  code (status: number): PollReply
  send (payload?: Buffer | string): PollReply
  readonly raw: { once (event: 'close', listener: () => void): unknown }
}

interface PendingPoll {
  reply: PollReply
  timer: NodeJS.Timeout
}

export const NO_CACHE = {
  'cache-control': 'no-cache, no-store',
  pragma: 'no-cache',
  expires: 'Thu, 01 Jan 1970 00:00:00 GMT'
}

export class LongPollingTransport implements Transport {
  readonly kind = 'LongPolling' as const
  readonly inherentKeepAlive = true
  readonly lingersAfterClose = true
  private queue: Buffer[] = []
  private queued = 0
  private pending: PendingPoll | undefined
  /** A poll that will be answered at the end of this turn, with everything sent until then. */
  private answering: PollReply | undefined
  private started = false
  /** The server closed the connection or the client sent DELETE: polls now drain and end. */
  private ended = false
  /** A raw connection ended by a failure: its last poll answers 500, as ASP.NET Core's does, instead of 204. */
  private failed = false
  private idleSince = Date.now()

  constructor (private readonly connection: Connection) {}

  /** A GET. Answers now or holds the reply; the route returns the reply either way. */
  poll (reply: PollReply): void {
    void reply.headers(NO_CACHE)
    if (!this.started) {
      // The first poll answers at once: every client waits for it before its handshake
      this.started = true
      this.idleSince = Date.now()
      void reply.code(200).header('content-type', 'application/octet-stream').send(Buffer.alloc(0))
      return
    }
    // A newer poll replaces the older one, which ends with 204 (ASP.NET Core's CancelPreviousPoll)
    if (this.pending !== undefined) this.finishPending(204)
    this.answerNow()
    if (this.queued > 0) {
      this.respond(reply, 200)
      return
    }
    if (this.ended) {
      this.end(reply)
      return
    }
    const timeout = this.connection.host.options.longPollTimeout
    const pending: PendingPoll = {
      reply,
      timer: setTimeout(() => {
        // A poll timeout is an empty 200: the client simply polls again
        if (this.pending === pending) {
          this.pending = undefined
          this.idleSince = Date.now()
          void reply.code(200).header('content-type', 'text/plain').send('')
        }
      }, timeout)
    }
    this.pending = pending
    reply.raw.once('close', () => {
      // The client gave up on this poll (abort): the connection goes inactive, no data lost
      if (this.pending === pending) {
        clearTimeout(pending.timer)
        this.pending = undefined
        this.idleSince = Date.now()
      }
    })
  }

  /** What a poll after the connection ended gets: the last data, then 204. */
  drain (reply: PollReply): void {
    void reply.headers(NO_CACHE)
    if (this.queued > 0) this.respond(reply, 200)
    else this.end(reply)
  }

  /** The answer of a poll once the connection has ended and its data is taken. */
  private end (reply: PollReply): void {
    if (this.failed) void reply.code(500).header('content-type', 'text/plain').send('')
    else void reply.code(204).send()
  }

  get hasQueuedData (): boolean {
    return this.queued > 0
  }

  /**
   * A poll is parked here, waiting for data. At shutdown only a parked poll can carry the
   * end to the client: Fastify answers a poll that arrives once close() has begun with 503
   * (return503OnClosing) before any route or hook runs.
   */
  get polling (): boolean {
    return this.pending !== undefined
  }

  send (frame: Buffer): void {
    if (this.ended) return
    this.queue.push(frame)
    this.queued += frame.length
    if (this.pending !== undefined) {
      const { reply, timer } = this.pending
      clearTimeout(timer)
      this.pending = undefined
      // Answer on the next tick so that messages sent in the same turn share one response
      this.answering = reply
      setImmediate(() => { this.answerNow() })
    }
  }

  /** Answers the poll scheduled by send(), if it has not been answered yet. */
  private answerNow (): void {
    const reply = this.answering
    if (reply === undefined) return
    this.answering = undefined
    this.respond(reply, 200)
  }

  private respond (reply: PollReply, status: number): void {
    const body = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue, this.queued)
    this.queue = []
    this.queued = 0
    this.idleSince = Date.now()
    void reply.code(status).header('content-type', 'application/octet-stream').send(body)
  }

  private finishPending (status: number): void {
    const pending = this.pending
    if (pending === undefined) return
    this.pending = undefined
    clearTimeout(pending.timer)
    this.idleSince = Date.now()
    if (status === 200 && this.queued > 0) this.respond(pending.reply, 200)
    else if (status === 200) this.end(pending.reply)
    else void pending.reply.code(204).send()
  }

  bufferedBytes (): number {
    return this.queued
  }

  /** Server-side end: a waiting poll gets what is queued (or 204, or 500 after a failure); later polls drain. */
  close (error?: Error): void {
    if (this.ended) return
    this.ended = true
    this.failed = error !== undefined
    // Now, not at the end of the turn: at app.close() with forceCloseConnections, Fastify
    // destroys the sockets before that, and the Close message would be lost
    this.answerNow()
    this.finishPending(200)
  }

  /** Nothing is unsent that a poll could not take later; dropping the queue is the abort. */
  abort (): void {
    this.ended = true
    this.queue = []
    this.queued = 0
    this.answerNow()
    this.finishPending(204)
  }

  /** DELETE from the client. */
  terminate (): void {
    this.ended = true
    this.queue = []
    this.queued = 0
    this.answerNow()
    this.finishPending(204)
    this.connection.transportClosed()
  }

  tick (now: number): void {
    if (this.pending === undefined && !this.ended && now - this.idleSince > this.connection.host.options.disconnectTimeout) {
      this.connection.log.info('signalr: long polling client stopped polling; disposing the connection')
      this.ended = true
      this.queue = []
      this.queued = 0
      this.connection.transportClosed(new DisconnectTimeoutError('The long polling client did not poll within the disconnect timeout.'))
    }
  }
}
