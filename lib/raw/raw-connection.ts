// What a raw connection handler is given: the client's messages as an async iterator, and
// send() paced by the same outbound bounds as a hub connection's. An iterator and a promise
// rather than a stream.Duplex: the transports carry messages, not a byte stream (a
// WebSocket message keeps its boundaries and its text or binary type), and a for-await loop
// whose end is the connection's end is what the handler's own lifetime is tied to.
import type { FastifyRequest } from 'fastify'
import type { Connection } from '../connection.js'
import { ConnectionClosedError, InvalidArgumentError } from '../errors.js'
import { Fifo } from '../fifo.js'
import type { RawConnection, RawMessage, SignalRTransport } from '../../types/index.js'

/**
 * Messages held for a handler that is not reading before the transport stops reading the
 * client: a bound on count as well as on bytes (transportMaxBufferSize), since tiny
 * messages cost more to hold than their bytes.
 */
export const MAX_HELD_MESSAGES = 1024

export class RawSession implements RawConnection {
  /** Each message with the bytes it came as (a decoded string may not say). */
  private readonly queue = new Fifo<{ message: RawMessage, bytes: number }>()
  private heldBytesTotal = 0
  private readers: Array<(message: RawMessage | undefined) => void> = []
  private ended = false
  readonly closed: Promise<Error | undefined>
  private resolveClosed!: (error: Error | undefined) => void

  constructor (private readonly connection: Connection) {
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve })
  }

  get connectionId (): string { return this.connection.connectionId }
  // Set before the connection is established, which is when a session is made
  get request (): FastifyRequest { return this.connection.request as FastifyRequest }
  get transport (): SignalRTransport { return this.connection.transportKind as SignalRTransport }
  get userId (): string | undefined { return this.connection.userId }
  get items (): Map<string, unknown> { return this.connection.items }
  get signal (): AbortSignal { return this.connection.signal }

  /** Bytes of the messages that arrived and were not read yet: bounded by transportMaxBufferSize and one message. */
  get heldBytes (): number { return this.heldBytesTotal }
  get heldMessages (): number { return this.queue.length }
  /** What the client has left unread of what was sent to it. */
  get bytesWaiting (): number { return this.connection.bytesWaiting }

  /** A message from the client (see RawConnectionHost.onData). */
  push (data: Buffer, binary: boolean): void {
    const message: RawMessage = binary ? data : data.toString('utf8')
    const reader = this.readers.shift()
    if (reader !== undefined) {
      reader(message)
      return
    }
    this.queue.push({ message, bytes: data.length })
    this.heldBytesTotal += data.length
    // The client is held back as a hub client is whose dispatcher is busy: a paused socket,
    // or a POST answered only once its message was read
    if (this.full) this.connection.pauseInbound()
  }

  private get full (): boolean {
    return this.heldBytesTotal >= this.connection.host.options.transportMaxBufferSize || this.queue.length >= MAX_HELD_MESSAGES
  }

  async read (): Promise<RawMessage | undefined> {
    const held = this.queue.shift()
    if (held !== undefined) {
      this.heldBytesTotal -= held.bytes
      if (!this.full) this.connection.resumeInbound()
      return held.message
    }
    if (this.ended) return undefined
    return await new Promise((resolve) => { this.readers.push(resolve) })
  }

  [Symbol.asyncIterator] (): AsyncIterator<RawMessage> {
    return {
      next: async () => {
        const value = await this.read()
        return value === undefined ? { done: true, value: undefined } : { done: false, value }
      }
    }
  }

  async send (data: string | Uint8Array): Promise<void> {
    let bytes: Buffer
    if (typeof data === 'string') bytes = Buffer.from(data, 'utf8')
    else if (data instanceof Uint8Array) bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    else throw new InvalidArgumentError('raw connection message', 'must be a string or a Uint8Array')
    if (!this.connection.sendRaw(bytes, typeof data !== 'string')) throw new ConnectionClosedError('The connection was closed.')
    // A sender that awaits each send goes at the client's pace, as hub senders do
    if (this.connection.congested) await this.connection.drained()
  }

  close (error?: Error): void {
    this.connection.close({ error })
  }

  /** The connection is gone: readers waiting get the end; what is held can still be read. */
  end (error: Error | undefined): void {
    this.ended = true
    const readers = this.readers
    this.readers = []
    for (const r of readers) r(undefined)
    this.resolveClosed(error)
  }
}
