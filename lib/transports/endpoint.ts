// What the transport routes and negotiate need from whatever is mapped at a path: a hub
// (lib/hub/mapped-hub.ts) or a raw connection handler (lib/raw/raw-endpoint.ts). Both are
// the host of the connections they make.
import type { ConnectionHost } from '../connection.js'
import type { ConnectionForwarding } from '../lifetime/hub-lifetime-manager.js'
import type { HubRouteOptions } from '../../types/index.js'

export type TransferFormat = 'Text' | 'Binary'

/** What a hub or raw connection handler offers its routes, beside hosting its connections. */
export interface MappedEndpoint {
  readonly path: string
  /** What negotiate offers each transport (Server-Sent Events only the Text one). */
  readonly transferFormats: readonly TransferFormat[]
  /** Request forwarding across a fleet (the Redis backplane's); raw endpoints have none. */
  readonly forwarding: ConnectionForwarding | undefined
  readonly negotiateRedirect: HubRouteOptions['negotiateRedirect']
}

export type Endpoint = ConnectionHost & MappedEndpoint
