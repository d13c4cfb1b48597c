// The WebSockets transport: one ws socket bound to one connection. Text frames for JSON,
// binary for MessagePack; inbound frames of either type are read as bytes, because the JS
// client sends its handshake as text even under MessagePack (signalr-wire.md §2.1).
import type { WebSocket, RawData } from 'ws'
import type { Connection } from '../connection.js'
import { ConnectionClosedError } from '../errors.js'
import type { Transport } from './transport.js'
import { WriteBatch, type BatchTarget } from './write-batch.js'

/** After our close frame the peer gets this long to answer before the socket is cut (WebSocketOptions.CloseTimeout). */
const CLOSE_TIMEOUT_MS = 5000
// ws copies its send options: one object of each kind serves every write
const TEXT = { binary: false }
const BINARY = { binary: true }

function toBuffer (data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

/** Each ws socket's transport, where the shared listeners below find it. */
const kTransport = Symbol('fastify-signalr.transport')
type BoundSocket = WebSocket & { [kTransport]: WebSocketTransport }
const transportOf = (socket: WebSocket): WebSocketTransport => (socket as BoundSocket)[kTransport]

// One set of listeners for every socket (ws calls them with the socket as `this`) instead of
// three closures per connection: an idle connection is mostly what it keeps
function onMessage (this: WebSocket, data: RawData, isBinary: boolean): void {
  transportOf(this).connection.receive(toBuffer(data), isBinary)
}

/**
 * A protocol error (invalid UTF-8, a frame over maxPayload): ws has already sent the close
 * code it calls for and ends the socket; the connection sees the close.
 */
function onError (this: WebSocket, err: Error): void {
  transportOf(this).connection.log.warn({ err }, 'signalr: WebSocket protocol error')
}

function onClose (this: WebSocket, code: number): void {
  const transport = transportOf(this)
  const connection = transport.connection
  // After a stateful reconnect the old socket's close is old news
  if (connection.transport !== transport) return
  // 1000 normal, 1001 going away, 1005 no status (what the JS client's stop() produces);
  // anything else (1006: the socket was cut) may be followed by a stateful reconnect
  if (code === 1000 || code === 1001 || code === 1005) connection.transportClosed()
  else connection.transportLost(new ConnectionClosedError(`WebSocket closed with status code: ${code}.`))
}

export class WebSocketTransport implements Transport, BatchTarget {
  readonly kind = 'WebSockets' as const
  readonly inherentKeepAlive = false
  private readonly batch: WriteBatch

  constructor (private readonly socket: WebSocket, readonly connection: Connection) {
    ;(socket as BoundSocket)[kTransport] = this
    // A raw connection's sends stay one WebSocket message each, of the type each was sent as
    this.batch = new WriteBatch(this, connection.host.raw)
    socket.on('message', onMessage)
    socket.on('error', onError)
    // 'close' comes once: on() spares the wrapper once() keeps per socket
    socket.on('close', onClose)
  }

  send (frame: Buffer, binary: boolean): void {
    if (this.socket.readyState !== this.socket.OPEN) return
    this.batch.add(frame, binary)
  }

  writeBatch (data: Buffer, binary: boolean): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(data, binary ? BINARY : TEXT)
  }

  bufferedBytes (): number {
    return this.socket.bufferedAmount
  }

  pauseReading (): void {
    this.socket.pause()
  }

  resumeReading (): void {
    this.socket.resume()
  }

  abort (): void {
    this.batch.discard()
    this.socket.terminate()
  }

  close (error?: Error): void {
    // What was sent before the close (the Close message above all) goes out first
    this.batch.flush()
    if (this.socket.readyState === this.socket.OPEN) {
      // 1011 (internal error) is what ASP.NET Core closes with when the application failed
      this.socket.close(error === undefined ? 1000 : 1011)
      const timer = setTimeout(() => { this.socket.terminate() }, CLOSE_TIMEOUT_MS)
      timer.unref()
      this.socket.once('close', () => { clearTimeout(timer) })
    } else if (this.socket.readyState === this.socket.CONNECTING) {
      this.socket.terminate()
    }
  }
}
