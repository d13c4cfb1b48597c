// A message bound for many connections, serialised at most once per hub protocol however
// many targets share that protocol (ASP.NET Core's SerializedHubMessage).
import type { HubProtocol } from './hub-protocol.js'
import type { HubMessage } from './messages.js'

export class SerializedMessage {
  readonly message: HubMessage
  private first: HubProtocol | undefined
  private firstBytes: Buffer | undefined
  private others: Map<HubProtocol, Buffer> | undefined

  constructor (message: HubMessage) {
    this.message = message
  }

  /** Throws what the protocol's writer throws (e.g. a value JSON cannot represent). */
  bytesFor (protocol: HubProtocol): Buffer {
    // Nearly every broadcast meets one or two protocols: avoid a Map for the common case
    if (this.first === protocol) return this.firstBytes as Buffer
    if (this.first === undefined) {
      this.firstBytes = protocol.write(this.message)
      this.first = protocol
      return this.firstBytes
    }
    this.others ??= new Map()
    let bytes = this.others.get(protocol)
    if (bytes === undefined) {
      bytes = protocol.write(this.message)
      this.others.set(protocol, bytes)
    }
    return bytes
  }
}
