// Length-prefix framing of the MessagePack hub protocol: each message is a VarInt byte count
// (7 bits per byte, least significant group first, MSB set on all but the last byte, at most
// 5 bytes) followed by that many bytes (signalr-wire.md §4.3).
import { InvalidMessageError, MessageTooLargeError } from '../errors.js'

const MAX_PREFIX_BYTES = 5
// Both reference readers cap a frame at 2^31-1, so the 5th prefix byte may only carry 3 bits
const MAX_FRAME_LENGTH = 0x7fffffff

/**
 * Calls `onFrame` with the body of each whole frame in `data` and returns the number of bytes
 * consumed. The declared length is checked against `maxMessageSize` as soon as the prefix is
 * complete, so a prefix claiming gigabytes fails at once instead of making the caller buffer
 * towards it. At most `maxFrames` frames are read. A truncated prefix or body is not an error: it is left unconsumed.
 */
export function readFrames (data: Buffer, maxMessageSize: number, onFrame: (body: Buffer) => void, maxFrames = Infinity): number {
  let offset = 0
  let count = 0
  while (offset < data.length && count < maxFrames) {
    let length = 0
    let prefixBytes = 0
    let byte: number
    do {
      if (offset + prefixBytes >= data.length) return offset
      byte = data[offset + prefixBytes]
      if (prefixBytes === MAX_PREFIX_BYTES - 1 && byte > 7) {
        throw new InvalidMessageError('Messages bigger than 2GB are not supported.')
      }
      // Multiplication, not <<, so the 5th group cannot flip the sign of a 32-bit int
      length += (byte & 0x7f) * 2 ** (7 * prefixBytes)
      prefixBytes++
    } while ((byte & 0x80) !== 0)

    if (maxMessageSize > 0 && length > maxMessageSize) throw new MessageTooLargeError(maxMessageSize)
    const start = offset + prefixBytes
    const end = start + length
    if (end > data.length) break
    onFrame(data.subarray(start, end))
    offset = end
    count++
  }
  return offset
}

/** `body` preceded by its VarInt length, in one new Buffer. */
export function writeVarIntFrame (body: Uint8Array): Buffer {
  const length = body.length
  if (length > MAX_FRAME_LENGTH) throw new RangeError('Messages bigger than 2GB are not supported.')
  let prefixBytes = 1
  for (let rest = length >>> 7; rest > 0; rest >>>= 7) prefixBytes++
  // allocUnsafe is safe here: every byte is written below
  const out = Buffer.allocUnsafe(prefixBytes + length)
  let rest = length
  for (let i = 0; i < prefixBytes; i++) {
    const group = rest & 0x7f
    rest >>>= 7
    out[i] = rest > 0 ? group | 0x80 : group
  }
  out.set(body, prefixBytes)
  return out
}
