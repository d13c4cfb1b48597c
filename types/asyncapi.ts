// The AsyncAPI 3.0 document a hub describes itself with (lib/hub/asyncapi.ts makes it):
// only the parts of the specification that the generator writes.

/** A JSON Schema, as the hub's TypeBox schemas serialise. */
export interface JsonSchema { [keyword: string]: unknown }

export interface AsyncApiContact { name?: string, url?: string, email?: string }
export interface AsyncApiLicense { name: string, url?: string }

/** The `asyncapi` route option of app.hub(): what the document says about itself. */
export interface AsyncApiOptions {
  /** Default: `SignalR hub <path>`. */
  title?: string
  /** The version of the hub's contract (default `1.0.0`). */
  version?: string
  description?: string
  contact?: AsyncApiContact
  license?: AsyncApiLicense
  /** Host (and port) the servers name when none is asked for; a served document uses the request's Host. */
  host?: string
}

/** Where the described servers are: app.signalr.hub(path).asyncapi({ host, secure }). */
export interface AsyncApiRequest {
  host?: string
  /** wss/https rather than ws/http (default false). */
  secure?: boolean
}

export interface AsyncApiReference { $ref: string }

export interface AsyncApiServer {
  host: string
  protocol: 'ws' | 'wss' | 'http' | 'https'
  title: string
  description: string
}

export interface AsyncApiMessage {
  name: string
  title: string
  summary: string
  contentType: string
  payload: JsonSchema
}

export interface AsyncApiChannel {
  address: string
  title: string
  description: string
  servers: AsyncApiReference[]
  messages: Record<string, AsyncApiMessage>
}

export interface AsyncApiOperation {
  /** From the server's side: `receive` for hub methods, `send` for client methods. */
  action: 'send' | 'receive'
  channel: AsyncApiReference
  title: string
  summary: string
  description?: string
  messages: AsyncApiReference[]
  reply?: { channel: AsyncApiReference, messages: AsyncApiReference[] }
}

export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  id: string
  info: {
    title: string
    version: string
    description: string
    contact?: AsyncApiContact
    license?: AsyncApiLicense
  }
  defaultContentType: string
  servers: Record<string, AsyncApiServer>
  channels: Record<string, AsyncApiChannel>
  operations: Record<string, AsyncApiOperation>
  components: { schemas: Record<string, JsonSchema> }
  /** What SignalR adds to the picture: the negotiate URL, the transports and hub protocols allowed. */
  'x-signalr': {
    negotiate: string
    transports: Array<'WebSockets' | 'ServerSentEvents' | 'LongPolling'>
    protocols: Array<'json' | 'messagepack'>
  }
}
