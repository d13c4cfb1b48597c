// Joins the frames a transport is given during one turn of the event loop into a single
// write, made on the next turn. A broadcast to N connections then costs N writes however
// many messages it carries, and a burst to one connection costs one; SignalR clients accept
// several whole hub messages per WebSocket message or SSE event (signalr-wire.md §2.0), and
// ASP.NET Core batches its writes the same way.

export interface BatchTarget {
  /** Writes the joined bytes of everything queued since the last flush. */
  writeBatch (data: Buffer, binary: boolean): void
}

const dirty = new Set<WriteBatch>()
let scheduled = false

function flushAll (): void {
  scheduled = false
  for (const batch of dirty) batch.flush()
  dirty.clear()
}

export class WriteBatch {
  private frames: Buffer[] = []
  private bytes = 0
  private binary = false

  constructor (private readonly target: BatchTarget) {}

  /** Bytes queued and not yet handed to the socket. */
  get pending (): number {
    return this.bytes
  }

  add (frame: Buffer, binary: boolean): void {
    // The handshake answer is text even on a binary connection: never mix frame types
    if (this.frames.length > 0 && binary !== this.binary) this.flush()
    this.binary = binary
    this.frames.push(frame)
    this.bytes += frame.length
    dirty.add(this)
    if (!scheduled) {
      scheduled = true
      setImmediate(flushAll)
    }
  }

  flush (): void {
    if (this.frames.length === 0) return
    const data = this.frames.length === 1 ? this.frames[0] : Buffer.concat(this.frames, this.bytes)
    this.frames = []
    this.bytes = 0
    this.target.writeBatch(data, this.binary)
  }

  discard (): void {
    this.frames = []
    this.bytes = 0
    dirty.delete(this)
  }
}
