// A message that arrived over the backplane already framed in each protocol: connections
// write those bytes as they are, so a broadcast is never parsed or serialised again here.
import { MessageType, type HubMessage } from '../../protocol/messages.js'
import type { HubProtocol } from '../../protocol/hub-protocol.js'
import { SerializedMessage } from '../../protocol/serialized-message.js'

// Connections only read the type (Invocations are tracked for stateful reconnect)
const INVOCATION: HubMessage = { type: MessageType.Invocation, target: '', arguments: [] }

export class RemoteMessage extends SerializedMessage {
  constructor (private readonly serialized: ReadonlyMap<string, Buffer>) {
    super(INVOCATION)
  }

  override bytesFor (protocol: HubProtocol): Buffer {
    const bytes = this.serialized.get(protocol.name)
    // ASP.NET Core's words for the same case: the sender's hub lacks this client's protocol
    if (bytes === undefined) throw new Error('This message was received from another server that did not have the requested protocol available.')
    return bytes
  }
}
