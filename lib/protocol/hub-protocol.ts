import type { HubMessage } from './messages.js'

export type TransferFormat = 'Text' | 'Binary'

/**
 * Result of feeding bytes to a protocol reader. `messages` are the whole messages found;
 * `consumed` is how many bytes of the input they took (the rest is an incomplete tail the
 * caller keeps for the next read). Malformed input throws an FST_SIGNALR_INVALID_MESSAGE
 * error, and the connection then ends with an error Close, as the .NET server does for an
 * InvalidDataException. Unknown message types are skipped, not errors (room for later
 * protocol versions, as in the .NET reader).
 */
export interface ParseResult {
  messages: HubMessage[]
  consumed: number
  /** Messages read, counting those of unknown types that were skipped: what `maxMessages` limits. */
  read: number
}

/**
 * A hub protocol: pure, no I/O. One instance is shared by every connection that uses it,
 * which is what lets a broadcast be serialised once per protocol.
 */
export interface HubProtocol {
  /** The name the client sends in the handshake (`json`, `messagepack`). */
  readonly name: string
  /** Highest protocol version supported (2 for both built-in protocols). */
  readonly version: number
  readonly transferFormat: TransferFormat
  /**
   * Parse the whole messages `data` holds, at most `maxMessages` of them (all when omitted).
   * Never reads past a message larger than `maxMessageSize` (throws MessageTooLargeError
   * instead), so a client can make the server hold at most the limit plus one frame.
   */
  parse (data: Buffer, maxMessageSize: number, maxMessages?: number): ParseResult
  /** Serialise one message, framing included. */
  write (message: HubMessage): Buffer
}
