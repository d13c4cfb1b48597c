// The hub protocols a server can speak, looked up case-insensitively by the name the client
// sends in its handshake.
import type { HubProtocol } from './hub-protocol.js'
import { jsonHubProtocol } from './json.js'
import { messagePackHubProtocol } from './msgpack.js'

const builtIn: Record<string, HubProtocol> = {
  json: jsonHubProtocol,
  messagepack: messagePackHubProtocol
}

export function protocolsByName (names: readonly string[]): Map<string, HubProtocol> {
  const out = new Map<string, HubProtocol>()
  for (const name of names) {
    const protocol = builtIn[name.toLowerCase()]
    if (protocol !== undefined) out.set(protocol.name, protocol)
  }
  return out
}

export type { HubProtocol } from './hub-protocol.js'
