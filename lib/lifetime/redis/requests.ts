// Requests and replies between fastify-signalr servers, over one channel of our own per
// server ({hub}:fastify-signalr:server:{name}): `request(server, op, args)` publishes to
// that server and resolves with its reply. Remote close uses it; so can anything that must
// run where a connection lives. A request that reaches no server, or that no reply answers
// within the timeout, rejects with FST_SIGNALR_BACKPLANE_UNAVAILABLE.
import { BackplaneUnavailableError, HubError } from '../../errors.js'
import type { RedisChannels } from './channels.js'
import { readTuple, writeTuple } from './codec.js'
import type { RedisSeam } from './seam.js'

const REQUEST = 0
const REPLY = 1
const OK = 0
const FAILED = 1

export type RequestHandler = (args: string[]) => Promise<string[]>

interface Pending {
  resolve: (values: string[]) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

export class ServerRequests {
  private readonly handlers = new Map<string, RequestHandler>()
  private readonly pending = new Map<number, Pending>()
  private nextId = 0

  constructor (
    private readonly seam: RedisSeam,
    private readonly channels: RedisChannels,
    private readonly log: { warn: (o: object, msg: string) => void }
  ) {}

  handle (op: string, handler: RequestHandler): void {
    this.handlers.set(op, handler)
  }

  async start (): Promise<void> {
    await this.seam.subscribe(this.channels.requests, (payload) => { this.received(payload) })
  }

  get pendingCount (): number {
    return this.pending.size
  }

  async request (server: string, op: string, args: string[], timeoutMs: number): Promise<string[]> {
    this.nextId = this.nextId === 0x7fffffff ? 1 : this.nextId + 1
    const id = this.nextId
    const reply = new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new BackplaneUnavailableError(`server '${server}' did not answer '${op}' within ${timeoutMs}ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
    })
    reply.catch(() => {})
    try {
      const receivers = await this.seam.publish(this.channels.requestsOf(server), writeTuple([REQUEST, id, this.channels.serverName, op, ...args]))
      if (receivers === 0) throw new BackplaneUnavailableError(`server '${server}' is not listening`)
    } catch (err) {
      this.settle(id)
      throw err
    }
    return await reply
  }

  private settle (id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (p === undefined) return undefined
    this.pending.delete(id)
    clearTimeout(p.timer)
    return p
  }

  private received (payload: Buffer): void {
    let items: Array<string | number | undefined>
    try {
      items = readTuple(payload, 3)
    } catch (err) {
      this.log.warn({ err }, 'signalr: an invalid request from another server was ignored')
      return
    }
    const [kind, id, third, fourth, ...rest] = items
    if (typeof id !== 'number') return
    const values = rest.map((v) => String(v ?? ''))
    if (kind === REPLY) {
      const p = this.settle(id)
      if (p === undefined) return
      if (third === OK) p.resolve(fourth === undefined ? values : [String(fourth), ...values])
      else p.reject(new HubError(String(fourth ?? 'the request failed')))
      return
    }
    if (kind !== REQUEST || typeof third !== 'string' || typeof fourth !== 'string') return
    const from = third
    const handler = this.handlers.get(fourth)
    const answer = async (reply: Buffer): Promise<void> => {
      await this.seam.publish(this.channels.requestsOf(from), reply).catch((err: unknown) => {
        this.log.warn({ err }, 'signalr: a reply to another server could not be sent')
      })
    }
    if (handler === undefined) {
      void answer(writeTuple([REPLY, id, FAILED, `unknown request '${fourth}'`]))
      return
    }
    handler(values).then(
      async (out) => { await answer(writeTuple([REPLY, id, OK, ...out])) },
      async (err: unknown) => { await answer(writeTuple([REPLY, id, FAILED, (err as Error).message ?? String(err)])) }
    ).catch(() => {})
  }

  close (): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(new BackplaneUnavailableError('the backplane is closing'))
  }
}
