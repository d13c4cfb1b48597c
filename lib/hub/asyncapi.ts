// The AsyncAPI 3.0 document of one hub, made from the schemas the hub already has: each hub
// method (arguments, result, stream items, uploads), each client method, the transports as
// servers and the hub protocols in the handshake. Payloads are the JSON hub protocol's
// messages (signalr-wire.md §4); MessagePack carries the same fields as arrays.
import type { TSchema } from 'typebox'
import type {
  AsyncApiChannel, AsyncApiDocument, AsyncApiMessage, AsyncApiOperation, AsyncApiOptions, AsyncApiReference,
  AsyncApiRequest, AsyncApiServer, ClientMethodDefinition, HubDefinition, JsonSchema, MethodDefinition
} from '../../types/index.js'

export interface HubDescriptionInput {
  path: string
  definition: HubDefinition
  transports: ReadonlyArray<'WebSockets' | 'ServerSentEvents' | 'LongPolling'>
  protocols: ReadonlyArray<'json' | 'messagepack'>
  info: AsyncApiOptions
}

const CHANNEL = 'hub'
const CHANNEL_REF: AsyncApiReference = { $ref: `#/channels/${CHANNEL}` }
const JSON_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'])
// Keywords whose values are data, not schemas: nothing under them is rewritten
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example'])

const TRANSPORTS = {
  WebSockets: {
    key: 'webSockets',
    secure: 'wss',
    plain: 'ws',
    description: 'GET {path}?id=<connectionToken> upgrades to a WebSocket that carries hub messages both ways: text frames for JSON, binary frames for MessagePack.'
  },
  ServerSentEvents: {
    key: 'serverSentEvents',
    secure: 'https',
    plain: 'http',
    description: 'GET {path}?id=<connectionToken> with Accept: text/event-stream receives hub messages as events; the client sends with POST {path}?id=<connectionToken>. Text (JSON) only.'
  },
  LongPolling: {
    key: 'longPolling',
    secure: 'https',
    plain: 'http',
    description: 'GET {path}?id=<connectionToken> is held until hub messages are ready; the client sends with POST {path}?id=<connectionToken> and ends with DELETE.'
  }
} as const

/** Map keys the specification accepts (components and channel messages: [A-Za-z0-9._-]), never two alike. */
class Keys {
  private readonly used = new Set<string>()

  take (preferred: string): string {
    const base = preferred.replace(/[^A-Za-z0-9._-]/g, '_')
    let key = base
    for (let n = 2; this.used.has(key); n++) key = `${base}_${n}`
    this.used.add(key)
    return key
  }
}

/**
 * A TypeBox schema as the JSON Schema (draft-07 dialect) AsyncAPI reads: cyclic definitions
 * move to components.schemas, and TypeBox's own types (void, undefined) become what the
 * wire carries (null).
 */
class Schemas {
  readonly components: Record<string, JsonSchema> = {}
  private readonly keys = new Keys()

  of (schema: TSchema | undefined): JsonSchema {
    if (schema === undefined) return {}
    let plain: unknown
    try {
      plain = JSON.parse(JSON.stringify(schema))
    } catch {
      return { description: 'A schema that has no JSON form.' }
    }
    return this.rewrite(plain, new Map()) as JsonSchema
  }

  private rewrite (node: unknown, refs: Map<string, string>): unknown {
    if (Array.isArray(node)) return node.map((n) => this.rewrite(n, refs))
    if (typeof node !== 'object' || node === null) return node
    const schema = node as Record<string, unknown>
    const defs = schema.$defs
    if (typeof defs === 'object' && defs !== null) {
      refs = new Map(refs)
      const names = Object.keys(defs)
      for (const name of names) {
        const target = `#/components/schemas/${this.keys.take(name)}`
        refs.set(name, target)
        refs.set(`#/$defs/${name}`, target)
      }
      for (const name of names) {
        const target = refs.get(name) as string
        this.components[target.slice('#/components/schemas/'.length)] = this.rewrite((defs as Record<string, unknown>)[name], refs) as JsonSchema
      }
    }
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(schema)) {
      if (k === '$defs' || k === '$id') continue
      if (DATA_KEYWORDS.has(k)) out[k] = v
      else if (k === '$ref' && typeof v === 'string') {
        const target = refs.get(v)
        if (target !== undefined) out.$ref = target
        else out.description = `A reference this document cannot resolve: ${v}`
      } else if (k === 'type' && typeof v === 'string' && !JSON_TYPES.has(v)) {
        if (v === 'void' || v === 'undefined') out.type = 'null'
      } else out[k] = this.rewrite(v, refs)
    }
    return out
  }
}

function tuple (items: JsonSchema[]): JsonSchema {
  // draft-07 wants a non-empty items array; no arguments is an array of at most none
  if (items.length === 0) return { type: 'array', maxItems: 0 }
  return { type: 'array', items, additionalItems: false, minItems: items.length, maxItems: items.length }
}

function message (type: number, fields: Record<string, JsonSchema>, required: string[]): JsonSchema {
  return {
    type: 'object',
    required: ['type', ...required],
    properties: { type: { type: 'integer', const: type }, ...fields }
  }
}

const INVOCATION_ID: JsonSchema = { type: 'string' }
const ERROR_TEXT: JsonSchema = { type: 'string', description: 'Present instead of a result when the call failed.' }

/** What stays the same whatever host the document is asked for. */
function describeHubBody (input: HubDescriptionInput): Omit<AsyncApiDocument, 'servers'> {
  const { path, definition } = input
  const schemas = new Schemas()
  const messageKeys = new Keys()
  const operationKeys = new Keys()
  const messages: Record<string, AsyncApiMessage> = {}
  const operations: Record<string, AsyncApiOperation> = {}
  const contentType = input.protocols.includes('json') ? 'application/json' : 'application/x-msgpack'

  const addMessage = (preferred: string, title: string, summary: string, payload: JsonSchema, type = contentType): AsyncApiReference => {
    const key = messageKeys.take(preferred)
    messages[key] = { name: key, title, summary, contentType: type, payload }
    return { $ref: `#/channels/${CHANNEL}/messages/${key}` }
  }
  const addOperation = (preferred: string, op: Omit<AsyncApiOperation, 'channel'>): void => {
    operations[operationKeys.take(preferred)] = { ...op, channel: CHANNEL_REF }
  }

  // The connection itself: handshake, keep-alive and close
  const handshake = addMessage('HandshakeRequest', 'Handshake request', 'The first message a client sends: the hub protocol it speaks.', {
    type: 'object',
    required: ['protocol', 'version'],
    properties: { protocol: { type: 'string', enum: [...input.protocols] }, version: { type: 'integer', const: 1 } }
  }, 'application/json')
  const handshakeResponse = addMessage('HandshakeResponse', 'Handshake response', 'Empty on success, else the reason the handshake failed.', {
    type: 'object', properties: { error: { type: 'string' } }
  }, 'application/json')
  addOperation('signalr.handshake', {
    action: 'receive',
    title: 'Handshake',
    summary: 'A client picks one of the hub protocols; the server answers before any other message.',
    messages: [handshake],
    reply: { channel: CHANNEL_REF, messages: [handshakeResponse] }
  })
  const ping = addMessage('Ping', 'Ping', 'Keep-alive, sent both ways when nothing else was.', message(6, {}, []))
  addOperation('signalr.clientPing', { action: 'receive', title: 'Client keep-alive', summary: 'A client shows it is alive.', messages: [ping] })
  addOperation('signalr.serverPing', { action: 'send', title: 'Server keep-alive', summary: 'The server shows it is alive.', messages: [ping] })
  const close = addMessage('Close', 'Close', 'Ends the connection, with the reason if it failed.', message(7, {
    error: { type: 'string' }, allowReconnect: { type: 'boolean' }
  }, []))
  addOperation('signalr.clientClose', { action: 'receive', title: 'Client close', summary: 'A client ends the connection.', messages: [close] })
  addOperation('signalr.serverClose', { action: 'send', title: 'Server close', summary: 'The server ends the connection.', messages: [close] })

  for (const [name, def] of Object.entries(definition.methods) as Array<[string, MethodDefinition]>) {
    const args = tuple(def.args.map((s) => schemas.of(s)))
    const uploads = def.uploads ?? []
    const streaming = def.stream !== undefined
    const fields: Record<string, JsonSchema> = {
      invocationId: streaming ? INVOCATION_ID : { type: 'string', description: 'Present when the caller waits for the Completion (invoke), absent for send.' },
      target: { type: 'string', const: name, description: 'Matched case-insensitively.' },
      arguments: args
    }
    const required = ['target', 'arguments', ...(streaming ? ['invocationId'] : [])]
    if (uploads.length > 0) {
      fields.streamIds = { type: 'array', items: { type: 'string' }, minItems: uploads.length, maxItems: uploads.length, description: 'One id per upload stream, in the order of the uploads.' }
      required.push('streamIds')
    }
    const received = [addMessage(`${name}.${streaming ? 'StreamInvocation' : 'Invocation'}`, `Call ${name}`,
      `A client calls the hub method ${name}${streaming ? ' and receives a stream' : ''}.`, message(streaming ? 4 : 1, fields, required))]
    uploads.forEach((s, i) => {
      received.push(addMessage(`${name}.Upload${i}`, `Upload ${i} of ${name}`, `An item of upload stream ${i}, carried under its stream id.`,
        message(2, { invocationId: { type: 'string', description: `The stream id at streamIds[${i}].` }, item: schemas.of(s) }, ['invocationId', 'item'])))
    })
    if (uploads.length > 0) {
      received.push(addMessage(`${name}.UploadCompletion`, `End of an upload of ${name}`, 'Ends an upload stream, with an error if the client failed it.',
        message(3, { invocationId: { type: 'string', description: 'The stream id.' }, error: ERROR_TEXT }, ['invocationId'])))
    }
    const replies: AsyncApiReference[] = []
    if (streaming) {
      received.push(addMessage(`${name}.CancelInvocation`, `Cancel ${name}`, 'Stops the stream.', message(5, { invocationId: INVOCATION_ID }, ['invocationId'])))
      replies.push(addMessage(`${name}.StreamItem`, `Item of ${name}`, `One item of the stream ${name} returns.`,
        message(2, { invocationId: INVOCATION_ID, item: schemas.of(def.stream) }, ['invocationId', 'item'])))
      replies.push(addMessage(`${name}.Completion`, `End of ${name}`, 'Ends the stream, with an error if it failed.',
        message(3, { invocationId: INVOCATION_ID, error: ERROR_TEXT }, ['invocationId'])))
    } else {
      replies.push(addMessage(`${name}.Completion`, `Result of ${name}`, `The result of ${name}, or why it failed.`,
        message(3, { invocationId: INVOCATION_ID, result: schemas.of(def.returns), error: ERROR_TEXT }, ['invocationId'])))
    }
    const kind = streaming ? 'a server-to-client stream' : uploads.length > 0 ? `a method with ${uploads.length} upload stream(s)` : 'a method'
    addOperation(name, {
      action: 'receive',
      title: name,
      summary: `Hub method ${name}: ${kind}.`,
      messages: received,
      reply: { channel: CHANNEL_REF, messages: replies }
    })
  }

  for (const [name, def] of Object.entries(definition.client ?? {}) as Array<[string, ClientMethodDefinition]>) {
    const answers = def.returns !== undefined
    const invocation = addMessage(`client.${name}.Invocation`, `Call client method ${name}`,
      `The server calls ${name} on clients${answers ? ' and waits for the answer' : ''}.`,
      message(1, {
        ...(answers ? { invocationId: INVOCATION_ID } : {}),
        target: { type: 'string', const: name },
        arguments: tuple(def.args.map((s) => schemas.of(s)))
      }, answers ? ['invocationId', 'target', 'arguments'] : ['target', 'arguments']))
    const op: Omit<AsyncApiOperation, 'channel'> = {
      action: 'send',
      title: `client.${name}`,
      summary: `Client method ${name}${answers ? ': a client result' : ''}.`,
      messages: [invocation]
    }
    if (answers) {
      op.reply = {
        channel: CHANNEL_REF,
        messages: [addMessage(`client.${name}.Completion`, `Answer of ${name}`, 'The client\'s answer, checked against the returns schema.',
          message(3, { invocationId: INVOCATION_ID, result: schemas.of(def.returns), error: ERROR_TEXT }, ['invocationId']))]
      }
    }
    addOperation(`client.${name}`, op)
  }

  const negotiate = path === '/' ? '/negotiate' : `${path.endsWith('/') ? path.slice(0, -1) : path}/negotiate`
  const channel: AsyncApiChannel = {
    address: path,
    title: `Hub ${path}`,
    description: `Negotiate with POST ${negotiate}?negotiateVersion=1, connect over one of the servers (the transports), then send the handshake. ` +
      'JSON messages end with the record separator 0x1E; MessagePack messages are arrays of the same fields, each prefixed with its VarInt length.',
    servers: input.transports.map((t) => ({ $ref: `#/servers/${TRANSPORTS[t].key}` })),
    messages
  }
  const info: AsyncApiDocument['info'] = {
    title: input.info.title ?? `SignalR hub ${path}`,
    version: input.info.version ?? '1.0.0',
    description: input.info.description ??
      `The contract of the SignalR hub at ${path}, generated by fastify-signalr from its schemas: the hub methods clients call, and the client methods the server calls.`
  }
  if (input.info.contact !== undefined) info.contact = input.info.contact
  if (input.info.license !== undefined) info.license = input.info.license
  return {
    asyncapi: '3.0.0',
    id: `urn:fastify-signalr:hub:${encodeURI(path)}`,
    info,
    defaultContentType: contentType,
    channels: { [CHANNEL]: channel },
    operations,
    components: { schemas: schemas.components },
    'x-signalr': { negotiate, transports: [...input.transports], protocols: [...input.protocols] }
  }
}

/**
 * The hub's document maker. The body is built once, on first use; each call adds only the
 * servers, because a served document names the host the request came to.
 */
export function describeHub (input: HubDescriptionInput): (request?: AsyncApiRequest) => AsyncApiDocument {
  let body: Omit<AsyncApiDocument, 'servers'> | undefined
  return (request = {}) => {
    body ??= describeHubBody(input)
    const host = request.host ?? input.info.host ?? 'localhost'
    const servers: Record<string, AsyncApiServer> = {}
    for (const t of input.transports) {
      const s = TRANSPORTS[t]
      servers[s.key] = {
        host,
        protocol: request.secure === true ? s.secure : s.plain,
        title: t,
        description: s.description.replaceAll('{path}', input.path)
      }
    }
    // A copy each time: the caller may change what it gets
    return structuredClone({ ...body, servers })
  }
}
