// A message bound for many connections, serialised at most once per hub protocol however
// many targets share that protocol (ASP.NET Core's SerializedHubMessage).
import { UnserializableMessageError } from '../errors.js'
import type { HubProtocol } from './hub-protocol.js'
import type { HubMessage } from './messages.js'

export class SerializedMessage {
  readonly message: HubMessage
  private first: HubProtocol | undefined
  private firstBytes: Buffer | undefined
  private others: Map<HubProtocol, Buffer> | undefined
  /** Why the first protocol that could not write the message failed: its senders reject with this. */
  error: Error | undefined
  /** Protocols that failed, so that a broadcast does not retry the writer once per target. */
  private failed: Set<HubProtocol> | undefined

  constructor (message: HubMessage) {
    this.message = message
  }

  /** Throws an UnserializableMessageError when the protocol cannot write the message (e.g. a BigInt in JSON). */
  bytesFor (protocol: HubProtocol): Buffer {
    // Nearly every broadcast meets one or two protocols: avoid a Map for the common case
    if (this.first === protocol) return this.firstBytes as Buffer
    if (this.error !== undefined && this.failed?.has(protocol) === true) throw this.error
    if (this.first === undefined) {
      this.firstBytes = this.write(protocol)
      this.first = protocol
      return this.firstBytes
    }
    this.others ??= new Map()
    let bytes = this.others.get(protocol)
    if (bytes === undefined) {
      bytes = this.write(protocol)
      this.others.set(protocol, bytes)
    }
    return bytes
  }

  private write (protocol: HubProtocol): Buffer {
    try {
      return protocol.write(this.message)
    } catch (err) {
      this.error ??= new UnserializableMessageError(protocol.name, (err as Error).message, { cause: err })
      this.failed ??= new Set()
      this.failed.add(protocol)
      throw this.error
    }
  }
}
