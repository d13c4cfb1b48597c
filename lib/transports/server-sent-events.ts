// The Server-Sent Events transport (server to client, text only). Each send is one event of
// whole hub messages; client-to-server bytes arrive by POST (signalr-wire.md §2.2).
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Connection } from '../connection.js'
import type { Transport } from './transport.js'
import { WriteBatch, type BatchTarget } from './write-batch.js'

const LF = 0x0a

/** ServerSentEventsMessageFormatter: `data: ` lines ending in CRLF, the event ended by CRLF. */
export function formatEvent (payload: Buffer): Buffer {
  if (payload.indexOf(LF) === -1) {
    return Buffer.concat([DATA_PREFIX, payload, CRLF_CRLF])
  }
  const parts: Buffer[] = []
  let start = 0
  while (start <= payload.length) {
    let end = payload.indexOf(LF, start)
    if (end === -1) end = payload.length
    let line = payload.subarray(start, end)
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1)
    // A payload ending in LF has no line after it
    if (!(end === payload.length && line.length === 0 && start === payload.length)) parts.push(DATA_PREFIX, line, CRLF)
    start = end + 1
  }
  parts.push(CRLF)
  return Buffer.concat(parts)
}

const DATA_PREFIX = Buffer.from('data: ')
const CRLF = Buffer.from('\r\n')
const CRLF_CRLF = Buffer.from('\r\n\r\n')

export class ServerSentEventsTransport implements Transport, BatchTarget {
  readonly kind = 'ServerSentEvents' as const
  readonly inherentKeepAlive = false
  private ended = false
  private readonly batch: WriteBatch

  /**
   * `headers`: what the application's hooks set on the reply before it was hijacked (CORS
   * headers from @fastify/cors, say), which the raw response would otherwise never carry.
   */
  constructor (private readonly res: ServerResponse, connection: Connection, headers: OutgoingHttpHeaders = {}) {
    // A raw connection's sends stay one event each
    this.batch = new WriteBatch(this, connection.host.raw)
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache,no-store',
      pragma: 'no-cache',
      // Proxies (IIS, nginx, CDNs) must neither compress nor buffer the stream
      'content-encoding': 'identity',
      'x-accel-buffering': 'no'
    })
    res.flushHeaders()
    // Some EventSource implementations fire `open` only once bytes arrive
    res.write(':\r\n')
    res.socket?.setNoDelay(true)
    res.once('close', () => {
      this.ended = true
      // The client closing its EventSource is how an SSE connection ends gracefully
      connection.transportClosed()
    })
  }

  send (frame: Buffer): void {
    if (this.ended) return
    this.batch.add(frame, false)
  }

  /** One event for the whole batch: an event may carry several whole hub messages. */
  writeBatch (data: Buffer): void {
    if (!this.ended) this.res.write(formatEvent(data))
  }

  bufferedBytes (): number {
    return this.res.writableLength
  }

  close (): void {
    if (this.ended) return
    this.batch.flush()
    this.ended = true
    this.res.end()
  }

  abort (): void {
    this.batch.discard()
    this.ended = true
    this.res.destroy()
  }
}
