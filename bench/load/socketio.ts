// The Socket.IO 4 protocol (Engine.IO v4) spoken directly over `ws` and over HTTP long
// polling, so that its client costs the same as our SignalR one: open packet, namespace
// connect (`40`), events with acks (`42<id>[...]` / `43<id>[...]`), pings answered.
// JSON (the default parser), or MessagePack as socket.io-msgpack-parser writes it: each
// Socket.IO packet one binary Engine.IO message (a WebSocket binary frame, or `b` + base64 in
// a polling payload), encoded and decoded by that package itself, as its client would.
import type http from 'node:http'
import { Decoder, Encoder } from 'socket.io-msgpack-parser'
import WebSocket from 'ws'
import { makeAgent, request } from './http.js'
import { closeWebSocket, Pending, withTimeout, type DialOptions, type LoadConnection } from './wire.js'

const PACKET_SEPARATOR = '\u001e'

/** A Socket.IO packet as socket.io-msgpack-parser encodes it. */
interface SioPacket { type: number, nsp: string, data?: unknown[], id?: number }

abstract class SioConnectionBase implements LoadConnection {
  onReceive: ((text: string) => void) | undefined
  onClose: ((error: Error) => void) | undefined
  closed = false
  private nextId = 0
  private readonly pending = new Pending<string>()
  private connectedResolve!: () => void
  private connectedReject!: (e: Error) => void
  protected readonly connected: Promise<void>

  constructor () {
    this.connected = new Promise((resolve, reject) => { this.connectedResolve = resolve; this.connectedReject = reject })
    this.connected.catch(() => {})
  }

  private encoder: Encoder | undefined
  private decoder: Decoder | undefined

  protected abstract sendPacket (packet: string): void
  /** One binary Engine.IO message. */
  protected abstract sendBinary (data: Buffer): void
  abstract close (): Promise<void>

  protected useMsgpack (): void {
    this.encoder = new Encoder()
    const decoder = this.decoder = new Decoder()
    decoder.on('decoded', (p: SioPacket) => { this.sioDecoded(p) })
  }

  /** The namespace connect, in the connection's parser. */
  protected connectPacket (): void {
    if (this.encoder !== undefined) this.sendSio({ type: 0, nsp: '/' })
    else this.sendPacket('40')
  }

  private sendSio (p: SioPacket): void {
    for (const part of (this.encoder as Encoder).encode(p) as unknown as Buffer[]) this.sendBinary(Buffer.from(part))
  }

  echo (text: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error('connection closed'))
    const n = ++this.nextId
    const p = this.pending.add(String(n))
    if (this.encoder !== undefined) this.sendSio({ type: 2, nsp: '/', data: ['echo', text], id: n })
    else this.sendPacket(`42${n}["echo",${JSON.stringify(text)}]`)
    return p
  }

  broadcast (text: string): void {
    if (this.closed) return
    if (this.encoder !== undefined) this.sendSio({ type: 2, nsp: '/', data: ['broadcastEcho', text] })
    else this.sendPacket(`42["broadcastEcho",${JSON.stringify(text)}]`)
  }

  /** One binary Engine.IO message: a whole msgpack-encoded Socket.IO packet. */
  protected binaryPacket (data: Buffer): void {
    try {
      this.decoder?.add(data)
    } catch (err) {
      this.ended(err as Error)
    }
  }

  private sioDecoded (p: SioPacket): void {
    switch (p.type) {
      case 0:
        this.connectedResolve()
        return
      case 4: {
        const e = new Error(`Socket.IO connect_error ${JSON.stringify(p.data)}`)
        this.connectedReject(e)
        this.ended(e)
        return
      }
      case 3:
        this.pending.resolve(String(p.id), p.data?.[0] as string)
        return
      case 2:
        if (p.data?.[0] === 'receive') this.onReceive?.(p.data[1] as string)
    }
  }

  /** One Engine.IO packet (text). */
  protected packet (p: string): void {
    switch (p.charCodeAt(0)) {
      case 0x30: // '0' open: handled by the transport
        return
      case 0x31: // '1' close
        this.ended(new Error('Engine.IO close'))
        return
      case 0x32: // '2' ping
        this.sendPacket('3')
        return
      case 0x34: // '4' message: a Socket.IO packet
        this.sioPacket(p)
        return
      case 0x62: // 'b': a binary message in a polling payload
        this.binaryPacket(Buffer.from(p.slice(1), 'base64'))
    }
  }

  private sioPacket (p: string): void {
    const type = p.charCodeAt(1)
    if (type === 0x30) { // '0' connect acknowledged
      this.connectedResolve()
      return
    }
    if (type === 0x34) { // '4' connect_error
      const e = new Error(`Socket.IO connect_error ${p.slice(2)}`)
      this.connectedReject(e)
      this.ended(e)
      return
    }
    // '2' event or '3' ack: digits (the ack id) then a JSON array
    let i = 2
    while (i < p.length && p.charCodeAt(i) >= 0x30 && p.charCodeAt(i) <= 0x39) i++
    const id = p.slice(2, i)
    const data = JSON.parse(p.slice(i)) as unknown[]
    if (type === 0x33) this.pending.resolve(id, data[0] as string)
    else if (type === 0x32 && data[0] === 'receive') this.onReceive?.(data[1] as string)
  }

  protected ended (error: Error): void {
    if (this.closed) return
    this.closed = true
    this.connectedReject(error)
    this.pending.rejectAll(error)
    this.onClose?.(error)
  }
}

class SioWsConnection extends SioConnectionBase {
  constructor (private readonly ws: WebSocket, msgpack: boolean) {
    super()
    if (msgpack) this.useMsgpack()
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binaryPacket(data)
      else this.packet(data.toString('utf8'))
    })
    ws.on('close', (code: number) => { this.ended(new Error(`WebSocket closed (${code})`)) })
    ws.on('error', () => {})
  }

  async open (timeoutMs: number): Promise<void> {
    await withTimeout(new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => { this.connectPacket() })
      this.ws.once('error', reject)
      this.connected.then(resolve, reject)
    }), timeoutMs, 'Socket.IO WebSocket connect')
  }

  protected sendPacket (packet: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(packet)
  }

  protected sendBinary (data: Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary: true })
  }

  async close (): Promise<void> {
    this.closed = true
    await closeWebSocket(this.ws)
  }
}

class SioPollingConnection extends SioConnectionBase {
  private url = ''
  private sending = false
  private readonly outbox: string[] = []

  constructor (private readonly agent: http.Agent, private readonly base: string, private readonly timeoutMs: number, msgpack: boolean) {
    super()
    if (msgpack) this.useMsgpack()
  }

  async open (): Promise<void> {
    const res = await request(this.agent, 'GET', this.base, undefined, {}, this.timeoutMs)
    if (res.status !== 200) throw new Error(`Engine.IO handshake: HTTP ${res.status}`)
    const packets = res.body.toString('utf8').split(PACKET_SEPARATOR)
    const open = packets.find((p) => p.startsWith('0'))
    if (open === undefined) throw new Error('Engine.IO handshake: no open packet')
    const { sid } = JSON.parse(open.slice(1)) as { sid: string }
    this.url = `${this.base}&sid=${encodeURIComponent(sid)}`
    this.connectPacket()
    void this.pollLoop()
    await withTimeout(this.connected, this.timeoutMs, 'Socket.IO polling connect')
  }

  private async pollLoop (): Promise<void> {
    while (!this.closed) {
      let res
      try {
        res = await request(this.agent, 'GET', this.url, undefined, {}, 120_000)
      } catch (err) {
        this.ended(err as Error)
        return
      }
      if (res.status !== 200) {
        this.ended(new Error(`poll: HTTP ${res.status}`))
        return
      }
      for (const p of res.body.toString('utf8').split(PACKET_SEPARATOR)) if (p.length > 0) this.packet(p)
    }
  }

  protected sendBinary (data: Buffer): void {
    this.sendPacket(`b${data.toString('base64')}`)
  }

  /** Engine.IO allows one POST at a time: what queues meanwhile goes out together. */
  protected sendPacket (packet: string): void {
    this.outbox.push(packet)
    if (!this.sending) void this.flush()
  }

  private async flush (): Promise<void> {
    this.sending = true
    while (this.outbox.length > 0 && !this.closed) {
      const body = this.outbox.splice(0).join(PACKET_SEPARATOR)
      try {
        const res = await request(this.agent, 'POST', this.url, body, { 'content-type': 'text/plain;charset=UTF-8' }, this.timeoutMs)
        if (res.status !== 200) throw new Error(`send: HTTP ${res.status}`)
      } catch (err) {
        this.ended(err as Error)
      }
    }
    this.sending = false
  }

  async close (): Promise<void> {
    if (this.closed) return
    // '1' close packet: the server ends the session
    const body = '1'
    this.closed = true
    try {
      await request(this.agent, 'POST', this.url, body, { 'content-type': 'text/plain;charset=UTF-8' }, 1000)
    } catch {}
  }
}

export class SocketIoDialer {
  private readonly agent: http.Agent

  constructor (private readonly o: DialOptions, maxSockets: number) {
    this.agent = makeAgent(o.localAddress, maxSockets)
  }

  async connect (): Promise<LoadConnection> {
    const o = this.o
    const msgpack = o.protocol === 'messagepack'
    if (o.transport === 'lp') {
      const c = new SioPollingConnection(this.agent, `${o.httpBase}/socket.io/?EIO=4&transport=polling`, o.timeoutMs, msgpack)
      await c.open()
      return c
    }
    const ws = new WebSocket(`${o.httpBase.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
      perMessageDeflate: false, handshakeTimeout: o.timeoutMs, ...(o.localAddress !== undefined && { localAddress: o.localAddress })
    })
    const c = new SioWsConnection(ws, msgpack)
    try {
      await c.open(o.timeoutMs)
    } catch (err) {
      ws.terminate()
      throw err
    }
    return c
  }

  destroy (): void {
    this.agent.destroy()
  }
}
