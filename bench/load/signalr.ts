// The SignalR protocol spoken directly: negotiate, then WebSockets or Long Polling, the
// handshake, and JSON or MessagePack hub messages. No @microsoft/signalr: its per-message
// overhead would make the client, not the server, the thing measured. MessagePack framing
// reuses the plugin's own codec (read-only import); JSON is written by hand.
import type http from 'node:http'
import WebSocket from 'ws'
import type { HubMessage } from '../../lib/protocol/messages.js'
import { messagePackHubProtocol } from '../../lib/protocol/msgpack.js'
import { makeAgent, request } from './http.js'
import { closeWebSocket, Pending, withTimeout, type DialOptions, type LoadConnection, type Protocol } from './wire.js'

const RS = 0x1e
const RS_CHAR = '\u001e'

interface Decoded {
  type: number
  invocationId?: string
  result?: unknown
  error?: string
  target?: string
  arguments?: unknown[]
}

/** Writes and reads hub messages for one protocol; keeps a partial-frame tail. */
class Codec {
  private tail: Buffer | undefined

  constructor (readonly protocol: Protocol) {}

  get binary (): boolean { return this.protocol === 'messagepack' }

  handshake (): string {
    return `{"protocol":"${this.protocol}","version":1}${RS_CHAR}`
  }

  invocation (target: string, arg: string, invocationId: string | undefined): string | Buffer {
    if (this.protocol === 'json') {
      return invocationId === undefined
        ? `{"type":1,"target":"${target}","arguments":[${JSON.stringify(arg)}]}${RS_CHAR}`
        : `{"type":1,"invocationId":"${invocationId}","target":"${target}","arguments":[${JSON.stringify(arg)}]}${RS_CHAR}`
    }
    return messagePackHubProtocol.write({ type: 1, invocationId, target, arguments: [arg] })
  }

  /** Every whole message in `data` (the handshake response already removed). */
  decode (data: Buffer, each: (m: Decoded) => void): void {
    const buf = this.tail === undefined ? data : Buffer.concat([this.tail, data])
    this.tail = undefined
    if (this.protocol === 'json') {
      let start = 0
      let end: number
      while ((end = buf.indexOf(RS, start)) !== -1) {
        each(JSON.parse(buf.toString('utf8', start, end)) as Decoded)
        start = end + 1
      }
      if (start < buf.length) this.tail = buf.subarray(start)
      return
    }
    const { messages, consumed } = messagePackHubProtocol.parse(buf, 0)
    for (const m of messages) each(m as HubMessage as Decoded)
    if (consumed < buf.length) this.tail = buf.subarray(consumed)
  }
}

/** Splits off the handshake response (`{...}` + 0x1E); throws if it carries an error. */
function takeHandshake (buf: Buffer): { rest: Buffer } | undefined {
  const end = buf.indexOf(RS)
  if (end === -1) return undefined
  const response = JSON.parse(buf.toString('utf8', 0, end)) as { error?: string }
  if (typeof response.error === 'string') throw new Error(`handshake refused: ${response.error}`)
  return { rest: buf.subarray(end + 1) }
}

abstract class HubConnectionBase implements LoadConnection {
  onReceive: ((text: string) => void) | undefined
  onClose: ((error: Error) => void) | undefined
  closed = false
  private nextId = 0
  private readonly pending = new Pending<string>()

  constructor (protected readonly codec: Codec) {}

  protected abstract sendFrame (frame: string | Buffer): void
  abstract close (): Promise<void>

  echo (text: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error('connection closed'))
    const id = String(++this.nextId)
    const p = this.pending.add(id)
    this.sendFrame(this.codec.invocation('Echo', text, id))
    return p
  }

  broadcast (text: string): void {
    if (!this.closed) this.sendFrame(this.codec.invocation('BroadcastEcho', text, undefined))
  }

  protected receive (data: Buffer): void {
    this.codec.decode(data, (m) => {
      switch (m.type) {
        case 1:
          if (m.target === 'Receive') this.onReceive?.(m.arguments?.[0] as string)
          return
        case 3:
          if (m.invocationId === undefined) return
          if (m.error !== undefined) this.pending.reject(m.invocationId, new Error(m.error))
          else this.pending.resolve(m.invocationId, m.result as string)
          return
        case 7:
          this.ended(new Error(`server sent Close${m.error === undefined ? '' : `: ${m.error}`}`))
      }
    })
  }

  protected ended (error: Error): void {
    if (this.closed) return
    this.closed = true
    this.pending.rejectAll(error)
    this.onClose?.(error)
  }
}

class WsHubConnection extends HubConnectionBase {
  constructor (private readonly ws: WebSocket, codec: Codec, first: Buffer) {
    super(codec)
    ws.on('message', (data: Buffer) => { this.receive(data) })
    ws.on('close', (code: number) => { this.ended(new Error(`WebSocket closed (${code})`)) })
    if (first.length > 0) this.receive(first)
  }

  protected sendFrame (frame: string | Buffer): void {
    this.ws.send(frame, { binary: this.codec.binary })
  }

  async close (): Promise<void> {
    this.closed = true
    await closeWebSocket(this.ws)
  }
}

class LpHubConnection extends HubConnectionBase {
  private handshaken = false
  private readonly handshakeDone: Promise<void>
  private handshakeResolve!: () => void
  private handshakeReject!: (e: Error) => void
  private sending = false
  private readonly outbox: Array<string | Buffer> = []

  constructor (private readonly agent: http.Agent, private readonly url: string, codec: Codec, private readonly timeoutMs: number) {
    super(codec)
    this.handshakeDone = new Promise((resolve, reject) => { this.handshakeResolve = resolve; this.handshakeReject = reject })
    this.handshakeDone.catch(() => {})
  }

  async start (): Promise<void> {
    // The first poll returns at once: the server finishes setting the connection up
    const first = await request(this.agent, 'GET', this.url, undefined, {}, this.timeoutMs)
    if (first.status !== 200) throw new Error(`first poll: HTTP ${first.status}`)
    void this.pollLoop()
    this.sendFrame(this.codec.handshake())
    await withTimeout(this.handshakeDone, this.timeoutMs, 'long polling handshake')
  }

  private async pollLoop (): Promise<void> {
    while (!this.closed) {
      let res
      try {
        res = await request(this.agent, 'GET', this.url, undefined, {}, 120_000)
      } catch (err) {
        this.fail(err as Error)
        return
      }
      if (res.status === 204) {
        this.fail(new Error('the server ended the long polling connection'))
        return
      }
      if (res.status !== 200) {
        this.fail(new Error(`poll: HTTP ${res.status}`))
        return
      }
      if (res.body.length === 0) continue
      let body = res.body
      if (!this.handshaken) {
        let taken
        try {
          taken = takeHandshake(body)
        } catch (err) {
          this.fail(err as Error)
          return
        }
        if (taken === undefined) continue
        this.handshaken = true
        this.handshakeResolve()
        body = taken.rest
      }
      if (body.length > 0) this.receive(body)
    }
  }

  private fail (error: Error): void {
    this.handshakeReject(error)
    this.ended(error)
  }

  /** One POST at a time; what queues meanwhile goes out together in the next. */
  protected sendFrame (frame: string | Buffer): void {
    this.outbox.push(frame)
    if (!this.sending) void this.flush()
  }

  private async flush (): Promise<void> {
    this.sending = true
    while (this.outbox.length > 0 && !this.closed) {
      const parts = this.outbox.splice(0)
      const body = parts.length === 1 ? parts[0] : Buffer.concat(parts.map((p) => typeof p === 'string' ? Buffer.from(p) : p))
      try {
        const res = await request(this.agent, 'POST', this.url, body,
          { 'content-type': this.codec.binary ? 'application/octet-stream' : 'text/plain;charset=UTF-8' }, this.timeoutMs)
        if (res.status !== 200) throw new Error(`send: HTTP ${res.status}`)
      } catch (err) {
        this.fail(err as Error)
      }
    }
    this.sending = false
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await request(this.agent, 'DELETE', this.url, undefined, {}, 1000)
    } catch {}
  }
}

async function negotiate (agent: http.Agent, o: DialOptions): Promise<string> {
  const res = await request(agent, 'POST', `${o.httpBase}${o.hubPath}/negotiate?negotiateVersion=1`, '', { 'content-type': 'text/plain;charset=UTF-8' }, o.timeoutMs)
  if (res.status !== 200) throw new Error(`negotiate: HTTP ${res.status}`)
  const body = JSON.parse(res.body.toString('utf8')) as { connectionToken?: string, connectionId?: string, error?: string }
  if (body.error !== undefined) throw new Error(`negotiate: ${body.error}`)
  const token = body.connectionToken ?? body.connectionId
  if (token === undefined) throw new Error('negotiate: no connection token')
  return token
}

/** Opens SignalR connections; one per call, sharing this process's keep-alive agent. */
export class SignalRDialer {
  private readonly agent: http.Agent

  constructor (private readonly o: DialOptions, maxSockets: number) {
    this.agent = makeAgent(o.localAddress, maxSockets)
  }

  async connect (): Promise<LoadConnection> {
    const o = this.o
    const token = await negotiate(this.agent, o)
    const codec = new Codec(o.protocol)
    const path = `${o.hubPath}?id=${encodeURIComponent(token)}`
    if (o.transport === 'lp') {
      const c = new LpHubConnection(this.agent, `${o.httpBase}${path}`, codec, o.timeoutMs)
      await c.start()
      return c
    }
    const ws = new WebSocket(`${o.httpBase.replace(/^http/, 'ws')}${path}`, {
      perMessageDeflate: false, handshakeTimeout: o.timeoutMs, ...(o.localAddress !== undefined && { localAddress: o.localAddress })
    })
    try {
      const first = await withTimeout(new Promise<Buffer>((resolve, reject) => {
        let buf: Buffer = Buffer.alloc(0)
        const onMessage = (data: Buffer): void => {
          buf = buf.length === 0 ? data : Buffer.concat([buf, data])
          let taken
          try {
            taken = takeHandshake(buf)
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)))
            return
          }
          if (taken === undefined) return
          ws.off('message', onMessage)
          resolve(taken.rest)
        }
        ws.on('message', onMessage)
        ws.once('open', () => { ws.send(codec.handshake()) })
        ws.once('error', reject)
        ws.once('close', (code: number) => { reject(new Error(`WebSocket closed during the handshake (${code})`)) })
      }), o.timeoutMs, 'WebSocket connect + handshake')
      ws.removeAllListeners('error')
      ws.removeAllListeners('close')
      ws.on('error', () => {}) // 'close' follows and ends the connection
      return new WsHubConnection(ws, codec, first)
    } catch (err) {
      ws.terminate()
      throw err
    }
  }

  destroy (): void {
    this.agent.destroy()
  }
}
