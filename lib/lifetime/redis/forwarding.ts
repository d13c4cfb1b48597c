// Request forwarding over Redis (opt-in: `redisBackplane({ client, forwarding: true })`), so
// that a load balancer needs no sticky sessions (reference/sticky-free.md, option b).
// Negotiate SETs the connection under a hash of its token; the first transport request GETDELs
// it, so exactly one server takes it, and that server subscribes to the connection's channel.
// A later POST, poll or DELETE reaching another server is PUBLISHed there, and the owner
// PUBLISHes the answer to the forwarder's reply channel: two Redis operations per forwarded
// request. Pub/sub is at most once and nothing is retried; a request that may have been acted
// on without an answer coming back ends the connection instead, so the client reconnects.
import { createHash } from 'node:crypto'
import type { ConnectionForwarding, ForwardedAnswer, ForwardedOp, ForwardOutcome, NegotiatedConnection } from '../hub-lifetime-manager.js'
import type { RedisChannels } from './channels.js'
import type { RedisSeam } from './seam.js'

const REQUEST = 0
const REPLY = 1
/** A forwarder asking whether the owner still listens (PUBLISH counts the receivers). */
const PROBE = 'probe'
/** The forwarder gave up on, or could not deliver, an answer: the owner ends the connection. */
const ABORT = 'abort'
const OPS = new Set<string>(['send', 'poll', 'delete', ABORT])

interface Header {
  k: number
  i: number
  /** Request: op and reply channel; reply: status and content type. */
  o?: string
  r?: string
  s?: number
  c?: string
}

/**
 * What travels: a 4-byte length, a JSON header, then the body as it is (a MessagePack
 * connection's bytes are binary). Only our own servers read it, never a .NET one.
 */
export function encodeForward (header: Header, body: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header))
  const out = Buffer.allocUnsafe(4 + h.length + body.length)
  out.writeUInt32BE(h.length, 0)
  h.copy(out, 4)
  body.copy(out, 4 + h.length)
  return out
}

export function decodeForward (payload: Buffer): { header: Header, body: Buffer } | undefined {
  if (payload.length < 4) return undefined
  const n = payload.readUInt32BE(0)
  if (n > payload.length - 4) return undefined
  let header: unknown
  try {
    header = JSON.parse(payload.subarray(4, 4 + n).toString())
  } catch {
    return undefined
  }
  if (typeof header !== 'object' || header === null || typeof (header as Header).k !== 'number' || typeof (header as Header).i !== 'number') return undefined
  return { header: header as Header, body: payload.subarray(4 + n) }
}

/** What Redis sees instead of a token: 192 bits of its SHA-256, which reveal nothing of it. */
export function tokenHash (token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 32)
}

interface Pending {
  resolve: (outcome: ForwardOutcome) => void
  token: string
  timer: NodeJS.Timeout
  probe: NodeJS.Timeout | undefined
}

export interface ForwardingSettings {
  serverName: string
  /** How often a held poll checks that its owner still listens. */
  probeInterval: number
}

export class RedisForwarding implements ConnectionForwarding {
  readonly replies: string
  private readonly pending = new Map<number, Pending>()
  private readonly served = new Set<string>()
  private nextId = 0
  /** Counters, for the tests and the benchmark: requests this server sent on, and served for others. */
  readonly counts = { forwarded: 0, served: 0, lost: 0 }

  constructor (
    private readonly seam: RedisSeam,
    private readonly channels: RedisChannels,
    private readonly settings: ForwardingSettings,
    private readonly ready: () => Promise<void>,
    private readonly track: (work: Promise<unknown>) => void,
    private readonly log: { warn: (o: object, msg: string) => void }
  ) {
    this.replies = channels.key('txreply', settings.serverName)
  }

  private channelOf (token: string): string {
    return this.channels.key('tx', tokenHash(token))
  }

  private keyOf (token: string): string {
    return this.channels.key('negotiated', tokenHash(token))
  }

  /** Subscribed with the hub's fixed channels. */
  async start (): Promise<void> {
    await this.seam.subscribe(this.replies, (payload) => { this.replied(payload) })
  }

  /** Channels subscribed for connections served here (leak checks, PUBSUB NUMSUB). */
  servedChannels (): string[] {
    return [...this.served].map((t) => this.channelOf(t))
  }

  get pendingCount (): number {
    return this.pending.size
  }

  async remember (token: string, c: NegotiatedConnection, ttlMs: number): Promise<void> {
    await this.ready()
    await this.seam.command(['SET', this.keyOf(token), JSON.stringify([c.connectionId, c.negotiateVersion, c.statefulReconnect ? 1 : 0]), 'PX', String(ttlMs)])
  }

  async take (token: string): Promise<NegotiatedConnection | undefined> {
    await this.ready()
    const raw = await this.seam.command(['GETDEL', this.keyOf(token)])
    if (raw === null || raw === undefined) return undefined
    try {
      const [connectionId, negotiateVersion, stateful] = JSON.parse(String(raw)) as [unknown, unknown, unknown]
      if (typeof connectionId !== 'string' || typeof negotiateVersion !== 'number') return undefined
      return { connectionId, negotiateVersion, statefulReconnect: stateful === 1 }
    } catch {
      return undefined
    }
  }

  async forward (token: string, op: ForwardedOp, body: Buffer, timeoutMs: number): Promise<ForwardOutcome> {
    await this.ready()
    this.nextId = this.nextId === 0x7fffffff ? 1 : this.nextId + 1
    const id = this.nextId
    const channel = this.channelOf(token)
    const outcome = new Promise<ForwardOutcome>((resolve) => {
      const timer = setTimeout(() => {
        // It reached the owner, which may have acted on it: the connection must end
        if (this.settle(id) !== undefined) {
          this.counts.lost++
          this.abort(token)
          resolve({ kind: 'lost' })
        }
      }, timeoutMs)
      this.pending.set(id, { resolve, token, timer, probe: undefined })
    })
    let receivers: number
    try {
      receivers = await this.seam.publish(channel, encodeForward({ k: REQUEST, i: id, o: op, r: this.replies }, body))
    } catch (err) {
      this.settle(id)
      throw err
    }
    if (receivers === 0) {
      this.settle(id)?.resolve({ kind: 'nobody' })
      return await outcome
    }
    this.counts.forwarded++
    // A poll is held for as long as the owner has nothing to send: if the owner dies meanwhile,
    // the next probe finds nobody listening, and the client hears it now instead of at the timeout
    if (op === 'poll') this.probeLater(id, channel)
    return await outcome
  }

  private probeLater (id: number, channel: string): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    p.probe = setTimeout(() => {
      if (!this.pending.has(id)) return
      this.seam.publish(channel, encodeForward({ k: REQUEST, i: 0, o: PROBE }, Buffer.alloc(0))).then((n) => {
        if (n === 0) this.settle(id)?.resolve({ kind: 'nobody' })
        else this.probeLater(id, channel)
      }, () => {
        // Redis is away: the owner may have answered into the void
        const gone = this.settle(id)
        if (gone !== undefined) {
          this.counts.lost++
          gone.resolve({ kind: 'lost' })
        }
      })
    }, this.settings.probeInterval)
  }

  private settle (id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (p === undefined) return undefined
    this.pending.delete(id)
    clearTimeout(p.timer)
    clearTimeout(p.probe)
    return p
  }

  abort (token: string): void {
    this.track(this.seam.publish(this.channelOf(token), encodeForward({ k: REQUEST, i: 0, o: ABORT }, Buffer.alloc(0))).catch(() => {}))
  }

  private replied (payload: Buffer): void {
    const m = decodeForward(payload)
    if (m === undefined || m.header.k !== REPLY) {
      this.log.warn({}, 'signalr: an invalid forwarded answer was ignored')
      return
    }
    const p = this.settle(m.header.i)
    // Too late (it timed out, and the owner was told to end the connection)
    if (p === undefined) return
    p.resolve({ kind: 'answered', answer: { status: m.header.s ?? 500, contentType: m.header.c, body: m.body } })
  }

  async serve (token: string, handler: (op: ForwardedOp | 'abort', body: Buffer) => Promise<ForwardedAnswer>, lost: () => void): Promise<void> {
    const channel = this.channelOf(token)
    this.served.add(token)
    try {
      await this.seam.subscribe(channel, (payload) => {
        const m = decodeForward(payload)
        if (m === undefined || m.header.k !== REQUEST || typeof m.header.o !== 'string') return
        const { o: op, i: id, r: replyTo } = m.header
        if (op === PROBE || !OPS.has(op)) return
        this.counts.served++
        const work = handler(op as ForwardedOp | 'abort', m.body).then(async (answer) => {
          if (op === ABORT || typeof replyTo !== 'string') return
          // Only a reply channel of this hub: a request cannot make us publish elsewhere
          if (!replyTo.startsWith(this.channels.key('txreply', ''))) return
          const delivered = await this.seam.publish(replyTo, encodeForward({ k: REPLY, i: id, s: answer.status, c: answer.contentType }, answer.body)).catch(() => 0)
          if (delivered === 0) {
            this.counts.lost++
            lost()
          }
        }).catch((err: unknown) => { this.log.warn({ err }, 'signalr: a forwarded request failed') })
        this.track(work)
      })
    } catch (err) {
      this.served.delete(token)
      throw err
    }
  }

  unserve (token: string): void {
    if (!this.served.delete(token)) return
    this.track(this.seam.unsubscribe(this.channelOf(token)).catch(() => {}))
  }

  close (): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.resolve({ kind: 'lost' })
    this.served.clear()
  }
}
