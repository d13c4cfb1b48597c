// Stateful reconnect bookkeeping for one connection (ASP.NET Core's MessageBuffer): sequence
// ids for the trackable messages (types 1–5) in each direction, the replay buffer of what the
// client has not acknowledged, and duplicate suppression after a reconnect.
// See signalr-wire.md §6.

import { Fifo } from './fifo.js'

interface Buffered { id: number, bytes: Buffer }

export class MessageBuffer {
  /** Sent and not yet acknowledged, oldest first. */
  private readonly unacked: Buffered[] = []
  private unackedBytes = 0
  /** Trackable messages that wait for room in the replay buffer (ASP.NET Core makes such writes wait). */
  private readonly waiting = new Fifo<Buffer>()
  private waitingBytesTotal = 0
  private sentCount = 0
  /** Highest trackable id received and processed. */
  private received = 0
  /** Id of the next trackable message to arrive; reset by the client's Sequence. */
  private incoming = 0
  private lastAckSent = 0

  constructor (private readonly limit: number) {}

  /** Bytes of messages that wait for an Ack to make room: the client is behind. */
  get waitingBytes (): number {
    return this.waitingBytesTotal
  }

  /**
   * Records an outbound trackable message. Returns the bytes to send now, or undefined when
   * the replay buffer is full and the message must wait for an Ack.
   */
  track (bytes: Buffer): Buffer | undefined {
    if (this.waiting.length > 0 || (this.unackedBytes > 0 && this.unackedBytes + bytes.length > this.limit)) {
      this.waiting.push(bytes)
      this.waitingBytesTotal += bytes.length
      return undefined
    }
    this.store(bytes)
    return bytes
  }

  private store (bytes: Buffer): void {
    this.unacked.push({ id: ++this.sentCount, bytes })
    this.unackedBytes += bytes.length
  }

  /** The client acknowledged every message up to `sequenceId`; returns messages that may now go out. */
  ack (sequenceId: number): Buffer[] {
    let drop = 0
    while (drop < this.unacked.length && this.unacked[drop].id <= sequenceId) {
      this.unackedBytes -= this.unacked[drop].bytes.length
      drop++
    }
    if (drop > 0) this.unacked.splice(0, drop)
    const released: Buffer[] = []
    while (this.waiting.length > 0 && (this.unackedBytes === 0 || this.unackedBytes + (this.waiting.peek() as Buffer).length <= this.limit)) {
      const bytes = this.waiting.shift() as Buffer
      this.waitingBytesTotal -= bytes.length
      this.store(bytes)
      released.push(bytes)
    }
    return released
  }

  /** An inbound trackable message: false when it is a duplicate replayed after a reconnect. */
  shouldProcess (): boolean {
    this.incoming++
    if (this.incoming <= this.received) return false
    this.received = this.incoming
    return true
  }

  /** The client's Sequence after a reconnect; throws when it claims messages we never got. */
  resetSequence (sequenceId: number): void {
    if (sequenceId > this.received + 1) throw new Error("Sequence ID greater than amount of messages we've received.")
    this.incoming = sequenceId - 1
  }

  /** The Ack to send, if anything arrived since the last one. */
  pendingAck (): number | undefined {
    if (this.received === this.lastAckSent) return undefined
    this.lastAckSent = this.received
    return this.received
  }

  /** What to send first on a new transport: the Sequence id, then every unacknowledged message. */
  replay (): { sequenceId: number, messages: Buffer[] } {
    const sequenceId = this.unacked.length > 0 ? this.unacked[0].id : this.sentCount + 1
    return { sequenceId, messages: this.unacked.map((m) => m.bytes) }
  }
}
