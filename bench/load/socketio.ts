// The Socket.IO 4 protocol (Engine.IO v4) spoken directly over `ws` and over HTTP long
// polling, so that its client costs the same as our SignalR one: open packet, namespace
// connect (`40`), events with acks (`42<id>[...]` / `43<id>[...]`), pings answered.
// JSON (the default parser) only.
import type http from 'node:http'
import WebSocket from 'ws'
import { makeAgent, request } from './http.js'
import { closeWebSocket, Pending, withTimeout, type DialOptions, type LoadConnection } from './wire.js'

const PACKET_SEPARATOR = '\u001e'

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

  protected abstract sendPacket (packet: string): void
  abstract close (): Promise<void>

  echo (text: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error('connection closed'))
    const id = String(++this.nextId)
    const p = this.pending.add(id)
    this.sendPacket(`42${id}["echo",${JSON.stringify(text)}]`)
    return p
  }

  broadcast (text: string): void {
    if (!this.closed) this.sendPacket(`42["broadcastEcho",${JSON.stringify(text)}]`)
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
  constructor (private readonly ws: WebSocket) {
    super()
    ws.on('message', (data: Buffer, isBinary: boolean) => { if (!isBinary) this.packet(data.toString('utf8')) })
    ws.on('close', (code: number) => { this.ended(new Error(`WebSocket closed (${code})`)) })
    ws.on('error', () => {})
  }

  async open (timeoutMs: number): Promise<void> {
    await withTimeout(new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => { this.sendPacket('40') })
      this.ws.once('error', reject)
      this.connected.then(resolve, reject)
    }), timeoutMs, 'Socket.IO WebSocket connect')
  }

  protected sendPacket (packet: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(packet)
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

  constructor (private readonly agent: http.Agent, private readonly base: string, private readonly timeoutMs: number) {
    super()
  }

  async open (): Promise<void> {
    const res = await request(this.agent, 'GET', this.base, undefined, {}, this.timeoutMs)
    if (res.status !== 200) throw new Error(`Engine.IO handshake: HTTP ${res.status}`)
    const packets = res.body.toString('utf8').split(PACKET_SEPARATOR)
    const open = packets.find((p) => p.startsWith('0'))
    if (open === undefined) throw new Error('Engine.IO handshake: no open packet')
    const { sid } = JSON.parse(open.slice(1)) as { sid: string }
    this.url = `${this.base}&sid=${encodeURIComponent(sid)}`
    this.sendPacket('40')
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
    if (o.protocol !== 'json') throw new Error('Socket.IO is measured with its default (JSON) parser only')
    if (o.transport === 'lp') {
      const c = new SioPollingConnection(this.agent, `${o.httpBase}/socket.io/?EIO=4&transport=polling`, o.timeoutMs)
      await c.open()
      return c
    }
    const ws = new WebSocket(`${o.httpBase.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
      perMessageDeflate: false, handshakeTimeout: o.timeoutMs, ...(o.localAddress !== undefined && { localAddress: o.localAddress })
    })
    const c = new SioWsConnection(ws)
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
