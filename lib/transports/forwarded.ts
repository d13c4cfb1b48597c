// Request forwarding, the transports' side (opt-in: the Redis backplane's `forwarding`). On
// the owner, a request forwarded from another server runs through the very code a local one
// does, with a reply that captures the answer; on the server the client reached, the owner's
// answer becomes the HTTP answer.
import { EventEmitter } from 'node:events'
import type { FastifyReply } from 'fastify'
import type { ConnectionForwarding, ForwardedAnswer, ForwardedOp, ForwardOutcome } from '../lifetime/hub-lifetime-manager.js'
import { NO_CACHE, type PollReply } from './long-polling.js'

const EMPTY = Buffer.alloc(0)

/** A reply for a request that came over the backplane: what is sent becomes `answer`. */
export class CapturedReply implements PollReply {
  private status = 200
  private contentType: string | undefined
  /** Never closes: the forwarder tells the owner when its client is gone (an abort). */
  readonly raw = new EventEmitter()
  readonly answer: Promise<ForwardedAnswer>
  private done: (answer: ForwardedAnswer) => void = () => {}

  constructor () {
    this.answer = new Promise((resolve) => { this.done = resolve })
  }

  headers (): this {
    return this
  }

  header (key: string, value: string): this {
    if (key.toLowerCase() === 'content-type') this.contentType = value
    return this
  }

  code (status: number): this {
    this.status = status
    return this
  }

  send (payload?: Buffer | string): this {
    this.done({ status: this.status, contentType: this.contentType, body: payload === undefined ? EMPTY : typeof payload === 'string' ? Buffer.from(payload) : payload })
    return this
  }
}

/** The HTTP answer for a forwarded request, on the server the client reached. */
export function answerForwarded (reply: FastifyReply, outcome: Exclude<ForwardOutcome, { kind: 'nobody' }>, op: ForwardedOp, forwarding: ConnectionForwarding, token: string): FastifyReply {
  if (outcome.kind === 'lost') {
    // The owner was told to end the connection; the client hears it now and reconnects
    reply.log.warn({ op }, 'signalr: a forwarded request got no answer from the server that owns the connection; the connection ends')
    return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('No Connection with that ID')
  }
  const { status, contentType, body } = outcome.answer
  if (reply.raw.destroyed) {
    // The client left while the owner answered: what the answer carried is lost with it
    if (body.length > 0) forwarding.abort(token)
    return reply
  }
  if (op === 'poll') void reply.headers(NO_CACHE)
  if (contentType !== undefined) void reply.header('content-type', contentType)
  return reply.code(status).send(body)
}
