// Record-separator framing used by the handshake and the JSON hub protocol: each message is
// UTF-8 text followed by 0x1E.
import { InvalidMessageError, MessageTooLargeError } from '../errors.js'

export const RECORD_SEPARATOR = 0x1e
export const RECORD_SEPARATOR_CHAR = '\u001e'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Calls `onRecord` with the text of each whole record in `data`, at most `maxRecords` of
 * them, and returns the number of bytes consumed. A record (or an unterminated tail) longer
 * than `maxMessageSize` throws before anything more is buffered, which bounds what a client
 * can make us hold.
 */
export function readRecords (data: Buffer, maxMessageSize: number, onRecord: (text: string) => void, maxRecords = Infinity): number {
  let start = 0
  let count = 0
  while (start < data.length && count < maxRecords) {
    const end = data.indexOf(RECORD_SEPARATOR, start)
    if (end === -1) {
      if (maxMessageSize > 0 && data.length - start > maxMessageSize) throw new MessageTooLargeError(maxMessageSize)
      break
    }
    if (maxMessageSize > 0 && end - start > maxMessageSize) throw new MessageTooLargeError(maxMessageSize)
    onRecord(decodeUtf8(data.subarray(start, end)))
    start = end + 1
    count++
  }
  return start
}

export function decodeUtf8 (bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new InvalidMessageError('The message is not valid UTF-8.')
  }
}

export function frameText (json: string): Buffer {
  return Buffer.from(json + RECORD_SEPARATOR_CHAR, 'utf8')
}
