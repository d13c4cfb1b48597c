// Joins the frames a transport is given during one turn of the event loop into a single
// write, made on the next turn. A broadcast to N connections then costs N writes however
// many messages it carries, and a burst to one connection costs one; SignalR clients accept
// several whole hub messages per WebSocket message or SSE event (signalr-wire.md §2.0), and
// ASP.NET Core batches its writes the same way.

export interface BatchTarget {
  /** Writes the joined bytes of everything queued since the last flush. */
  writeBatch (data: Buffer, binary: boolean): void
}

/**
 * A batch that reaches this many bytes is written at once rather than at the end of the
 * turn: what a burst produces then reaches the socket, where it counts as unread only if
 * the client does not take it, and the batch never holds more than this plus one message.
 */
export const BATCH_FLUSH_BYTES = 65_536

// Batches with frames queued this turn. A batch is listed once per turn (its `listed` flag);
// one flushed early stays listed and finds itself empty at the end of the turn
let dirty: WriteBatch[] = []
let scheduled = false

function flushAll (): void {
  scheduled = false
  const batches = dirty
  dirty = []
  // A write may add to another batch meanwhile: it is listed anew, for the next turn
  for (let i = 0; i < batches.length; i++) batches[i].flushListed()
}

export class WriteBatch {
  private frames: Buffer[] = []
  private bytes = 0
  private binary = false
  private listed = false

  /**
   * `separate`: the frames keep their boundaries and are written one by one at the flush
   * (raw connections, whose messages carry no framing of their own).
   */
  constructor (private readonly target: BatchTarget, private readonly separate = false) {}

  add (frame: Buffer, binary: boolean): void {
    // The handshake answer is text even on a binary connection: never mix frame types
    if (this.frames.length > 0 && binary !== this.binary) this.flush()
    this.binary = binary
    this.frames.push(frame)
    this.bytes += frame.length
    if (this.bytes >= BATCH_FLUSH_BYTES) {
      this.flush()
      return
    }
    if (this.listed) return
    this.listed = true
    dirty.push(this)
    if (!scheduled) {
      scheduled = true
      setImmediate(flushAll)
    }
  }

  /** The end of the turn reached this batch. */
  flushListed (): void {
    this.listed = false
    this.flush()
  }

  flush (): void {
    if (this.frames.length === 0) return
    const frames = this.frames
    const bytes = this.bytes
    this.frames = []
    this.bytes = 0
    if (this.separate) {
      for (const frame of frames) this.target.writeBatch(frame, this.binary)
      return
    }
    this.target.writeBatch(frames.length === 1 ? frames[0] : Buffer.concat(frames, bytes), this.binary)
  }

  discard (): void {
    this.frames.length = 0
    this.bytes = 0
  }
}
