// A connection's inbound bytes, reassembled across reads at a cost linear in what arrives.
// Chunks are kept as they come and joined only once they may hold a whole message: a text
// chunk is searched once for the record separator, and a binary frame's length prefix says
// how many bytes to wait for. Joining on every read, and rescanning from the start, made one
// 1 MB record sent in 16-byte frames cost 20 s of CPU.
import { RECORD_SEPARATOR } from './protocol/text-framing.js'

export type Framing = 'text' | 'binary'

const MAX_PREFIX_BYTES = 5

export class InboundBuffer {
  private chunks: Buffer[] = []
  private size = 0
  /** Total bytes needed before a parse can find a whole binary frame. */
  private needed = 1
  /** Set when a parse may make progress: a whole message may be present. */
  private maybeWhole = false

  constructor (private framing: Framing = 'text') {}

  get length (): number {
    return this.size
  }

  /** Whether parsing now may find a whole message. */
  get ready (): boolean {
    return this.maybeWhole
  }

  /** The handshake is text; what follows it is framed by the hub protocol. */
  setFraming (framing: Framing): void {
    this.framing = framing
    this.settle(this.take())
  }

  append (chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.size += chunk.length
    if (this.maybeWhole) return
    this.maybeWhole = this.framing === 'text' ? chunk.includes(RECORD_SEPARATOR) : this.size >= this.needed
  }

  /**
   * Whether the bytes held exceed `limit` without a whole text record: a record that is
   * already too long must be refused before more of it arrives. Binary frames are refused
   * by their declared length when they are parsed.
   */
  overLimit (limit: number): boolean {
    return limit > 0 && !this.maybeWhole && this.framing === 'text' && this.size > limit
  }

  /** Everything held, as one Buffer (joined once, here). */
  take (): Buffer {
    if (this.chunks.length === 0) return Buffer.alloc(0)
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)]
    return this.chunks[0]
  }

  /**
   * After a parse of take(): `consumed` bytes were used. `more` says the parse stopped early
   * (its message budget ran out) and whole messages may remain.
   */
  consume (consumed: number, more: boolean): void {
    // The common case, everything parsed: nothing to cut, keep or scan
    if (consumed === this.size) {
      this.clear()
      return
    }
    const all = this.take()
    const rest = consumed === 0 ? all : all.subarray(consumed)
    if (more) {
      this.chunks = rest.length === 0 ? [] : [rest]
      this.size = rest.length
      this.maybeWhole = rest.length > 0
      return
    }
    this.settle(rest)
  }

  clear (): void {
    // Emptied in place: a connection goes through this once per frame it receives
    this.chunks.length = 0
    this.size = 0
    this.needed = 1
    this.maybeWhole = false
  }

  /** Keeps `rest`, which holds no whole message, and works out what it waits for. */
  private settle (rest: Buffer): void {
    this.chunks = rest.length === 0 ? [] : [rest]
    this.size = rest.length
    if (this.framing === 'text') {
      // The parser stops at the last separator, so what remains may still hold one only
      // right after the handshake switched framings
      this.maybeWhole = rest.includes(RECORD_SEPARATOR)
      return
    }
    this.needed = bytesForFrame(rest)
    this.maybeWhole = rest.length > 0 && rest.length >= this.needed
  }
}

/** Bytes a VarInt-framed message starting at `data[0]` occupies, or one more than held while its prefix is incomplete. */
function bytesForFrame (data: Buffer): number {
  let length = 0
  for (let i = 0; i < MAX_PREFIX_BYTES && i < data.length; i++) {
    const byte = data[i]
    length += (byte & 0x7f) * 2 ** (7 * i)
    // A malformed prefix is left for the parser to refuse: ask for what is there
    if ((byte & 0x80) === 0) return i + 1 + length
  }
  return data.length >= MAX_PREFIX_BYTES ? data.length : data.length + 1
}
