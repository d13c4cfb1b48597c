// The HTTP surface of one hub or raw connection handler: negotiate, the transport GET
// (WebSockets upgrade, SSE or a long poll), the POST send endpoint and DELETE, each guarded
// by the endpoint's Fastify hooks.
// The routes live in their own encapsulated scope so that the raw-bytes body parser they
// need never touches the application's routes.
import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler, RouteOptions } from 'fastify'
import type { WebSocket } from 'ws'
import type { Connection } from '../connection.js'
import type { Registry } from '../registry.js'
import type { HubRouteOptions } from '../../types/index.js'
import { ConnectionClosedError } from '../errors.js'
import type { ConnectionForwarding, ForwardedOp } from '../lifetime/hub-lifetime-manager.js'
import type { Endpoint } from './endpoint.js'
import { answerForwarded, CapturedReply } from './forwarded.js'
import { LongPollingTransport, type PollReply } from './long-polling.js'
import { negotiateHandler } from './negotiate.js'
import { redactingRequestSerializer } from './access-token.js'
import { queryValue } from './query.js'
import { ServerSentEventsTransport } from './server-sent-events.js'
import type { TransportKind } from './transport.js'
import { isWebSocketUpgrade, type WebSocketUpgrades } from './upgrade.js'
import { WebSocketTransport } from './websocket.js'

/** The Fastify route options an application may set on a hub's routes (see HubRouteOptions). */
export type HubRouteSettings = Pick<HubRouteOptions, 'onRequest' | 'preParsing' | 'preValidation' | 'preHandler' | 'preSerialization' |
'onSend' | 'onResponse' | 'onTimeout' | 'onError' | 'onRequestAbort' | 'logLevel' | 'config' | 'constraints'>

const SETTING_KEYS = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend', 'onResponse', 'onTimeout',
  'onError', 'onRequestAbort', 'logLevel', 'config', 'constraints'] as const satisfies ReadonlyArray<keyof HubRouteSettings>

/** Splits route options into the Fastify route settings and everything else. */
export function splitRouteSettings<T extends HubRouteSettings> (options: T): { settings: HubRouteSettings, rest: Omit<T, keyof HubRouteSettings> } {
  const settings: Record<string, unknown> = {}
  const rest: Record<string, unknown> = { ...options }
  for (const key of SETTING_KEYS) {
    settings[key] = options[key]
    delete rest[key]
  }
  return { settings: settings as HubRouteSettings, rest: rest as Omit<T, keyof HubRouteSettings> }
}

const kHandler = Symbol('fastify-signalr.handler')

function text<R extends PollReply> (reply: R, status: number, body: string): R {
  reply.code(status).header('content-type', 'text/plain; charset=utf-8').send(body)
  return reply
}

const EMPTY = Buffer.alloc(0)
/** How long a POST or DELETE forwarded to the connection's owner waits for its answer. */
const FORWARD_TIMEOUT_MS = 30_000

function hookList (hook: HubRouteSettings['preHandler']): preHandlerHookHandler[] {
  if (hook === undefined) return []
  return (Array.isArray(hook) ? hook : [hook]) as preHandlerHookHandler[]
}

function wantsEventStream (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  if (accept === undefined) return false
  // Only the media type counts: the .NET long-polling client sends `Accept: */*`
  return accept.split(',').some((part) => part.split(';')[0].trim().toLowerCase() === 'text/event-stream')
}

function notSupported (kind: TransportKind): string {
  return `${kind} transport not supported by this end point type`
}

/** Whether a POST body came as text: what the JS client sends a string as (`text/plain;charset=UTF-8`). */
function textBody (request: FastifyRequest): boolean {
  return request.headers['content-type']?.trimStart().toLowerCase().startsWith('text/') === true
}

/** A hub's AsyncAPI document, served next to its routes. */
export type AsyncApiServer = (request: FastifyRequest) => unknown

/**
 * Maps the routes of `hub` at `url` in `app`'s scope (so the scope's prefix, hooks and
 * plugins apply), with the application's route settings on each of them.
 */
export function mapHubRoutes (app: FastifyInstance, url: string, hub: Endpoint, registry: Registry, upgrades: WebSocketUpgrades, settings: HubRouteSettings, asyncapi?: AsyncApiServer): void {
  const base = url.length > 1 && url.endsWith('/') ? url.slice(0, -1) : url
  const paths = base === '/' ? ['/'] : [base, base + '/']
  const negotiatePath = base === '/' ? '/negotiate' : base + '/negotiate'
  const o = hub.options
  // A hub's POST or WebSocket message may carry many hub messages, each checked by the
  // parser; a raw connection's is one message, checked here
  const bodyLimit = o.maximumReceiveMessageSize === 0
    ? undefined
    : hub.raw ? o.maximumReceiveMessageSize : Math.max(1_048_576, o.maximumReceiveMessageSize * 4)
  const forwarding = hub.forwarding

  /** Finds the connection of a transport request, or answers it with the spec's error. */
  function lookup (request: FastifyRequest, reply: FastifyReply, kind: TransportKind): Connection | undefined {
    const id = queryValue(request.query, 'id')
    if (id === undefined || id === '') {
      text(reply, 400, 'Connection ID required')
      return undefined
    }
    const connection = registry.connection(id)
    if (connection === undefined || connection.host !== hub) {
      text(reply, 404, 'No Connection with that ID')
      return undefined
    }
    // Also while a stateful-reconnect connection waits for its client: only a transport of
    // the same kind may resume it, never a second handshake under another one
    if (connection.transportKind !== undefined && connection.transportKind !== kind) {
      text(reply, 400, 'Cannot change transports mid-connection')
      return undefined
    }
    return connection
  }

  const wss = upgrades.server(bodyLimit ?? 0)

  /** After the application's hooks: refusals are plain HTTP answers, given before the upgrade. */
  function webSocket (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    if (!o.transports.includes('WebSockets')) return text(reply, 404, notSupported('WebSockets'))
    const origin = request.headers.origin
    if (o.allowedOrigins !== undefined && origin !== undefined && !o.allowedOrigins.includes(origin)) {
      request.log.warn({ origin }, 'signalr: WebSocket upgrade from a disallowed origin refused')
      return text(reply, 403, 'Origin not allowed')
    }
    let connection: Connection | undefined
    if (queryValue(request.query, 'id') === undefined) {
      // skipNegotiation: the client opens the socket with no id and gets v0 semantics
      if (registry.closing) return text(reply, 503, 'The server is shutting down.')
      connection = registry.createConnection(hub, 0, false)
    } else {
      connection = lookup(request, reply, 'WebSockets')
      if (connection === undefined) return reply
      if (connection.claimed) return text(reply, 409, 'Connection ID is already in use by another WebSocket.')
    }
    const claimed = connection
    claimed.claim('WebSockets')
    reply.hijack()
    upgrades.upgrade(wss, request, reply.raw, (socket: WebSocket) => {
      const transport = new WebSocketTransport(socket, claimed)
      if (claimed.state === 'connected') claimed.reattach(transport)
      else claimed.attach(transport, request)
    })
    return reply
  }

  async function get (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const wanted = queryValue(request.query, 'id')
    if (forwarding !== undefined && wanted !== undefined && wanted !== '' && registry.connection(wanted) === undefined && registry.retiredTransport(wanted) === undefined) {
      try {
        if (await elsewhere(forwarding, request, reply, wanted)) return reply
      } catch (err) {
        return unavailable(request, reply, err)
      }
    }
    if (isWebSocketUpgrade(request)) return webSocket(request, reply)
    const sse = wantsEventStream(request)
    const kind: TransportKind = sse ? 'ServerSentEvents' : 'LongPolling'
    if (!o.transports.includes(kind)) return text(reply, 404, notSupported(kind))
    if (!sse) {
      const id = queryValue(request.query, 'id')
      const retired = id === undefined ? undefined : registry.retiredTransport(id)
      if (retired instanceof LongPollingTransport) {
        retired.drain(reply)
        return reply
      }
    }
    const connection = lookup(request, reply, kind)
    if (connection === undefined) return reply
    if (sse) {
      if (connection.claimed) return text(reply, 409, 'Connection already has an active Server-Sent Events stream.')
      connection.claim('ServerSentEvents')
      const headers = reply.getHeaders() as OutgoingHttpHeaders
      reply.hijack()
      connection.attach(new ServerSentEventsTransport(reply.raw, connection, headers), request)
      return reply
    }
    let transport = connection.transport
    if (transport === undefined) {
      connection.claim('LongPolling')
      transport = new LongPollingTransport(connection)
      connection.attach(transport, request)
    }
    ;(transport as LongPollingTransport).poll(reply)
    return reply
  }

  /** A POST, on the server that owns the connection, whichever server the client reached. */
  async function sendHere (id: string, body: unknown, reply: PollReply, binary = true): Promise<void> {
    const connection = registry.connection(id)
    if (connection === undefined || connection.host !== hub) {
      text(reply, 404, 'No Connection with that ID')
      return
    }
    if (connection.transportKind === 'WebSockets') {
      text(reply, 405, 'POST requests are not allowed for WebSocket connections.')
      return
    }
    if (connection.transport === undefined) {
      text(reply, 400, 'No transport is connected for this connection yet.')
      return
    }
    if (Buffer.isBuffer(body)) connection.receive(body, binary)
    // While the connection's messages back up, the answer waits: the client sends its next
    // POST only after this one, so it is held back as a paused socket would be
    await connection.readable()
    text(reply, 200, '')
  }

  /** The Long Polling transport of a live connection here, or the spec's error answered. */
  function longPollingHere (id: string, reply: PollReply, otherwise: string): LongPollingTransport | undefined {
    const connection = registry.connection(id)
    if (connection === undefined || connection.host !== hub) {
      text(reply, 404, 'No Connection with that ID')
      return undefined
    }
    if (!(connection.transport instanceof LongPollingTransport)) {
      text(reply, 400, otherwise)
      return undefined
    }
    return connection.transport
  }

  /** A DELETE, on the server that owns the connection. */
  function deleteHere (id: string, reply: PollReply): void {
    // Already ended (the client's Close message often wins the race with its DELETE)
    if (registry.retiredTransport(id) !== undefined) {
      text(reply, 202, '')
      return
    }
    const transport = longPollingHere(id, reply, 'Cannot terminate this connection using the DELETE endpoint.')
    if (transport === undefined) return
    transport.terminate()
    text(reply, 202, '')
  }

  /** A poll forwarded from another server: the connection's first poll was answered here. */
  function pollHere (id: string, reply: PollReply): void {
    const retired = registry.retiredTransport(id)
    if (retired instanceof LongPollingTransport) {
      retired.drain(reply)
      return
    }
    longPollingHere(id, reply, 'Cannot change transports mid-connection')?.poll(reply)
  }

  /** What the owner does with a request another server forwarded to it. */
  function serveForwarded (token: string) {
    return async (op: ForwardedOp | 'abort', body: Buffer) => {
      const reply = new CapturedReply()
      if (op === 'send') await sendHere(token, body, reply)
      else if (op === 'poll') pollHere(token, reply)
      else if (op === 'delete') deleteHere(token, reply)
      else {
        lose(token)
        reply.code(204).send()
      }
      return await reply.answer
    }
  }

  /** A forwarded request may have been acted on without its client hearing: end cleanly, the client reconnects. */
  function lose (token: string): void {
    const connection = registry.connection(token)
    if (connection === undefined) return
    connection.log.warn('signalr: an answer forwarded to another server was lost; closing the connection')
    connection.close({ error: new ConnectionClosedError('An answer forwarded to another server was lost.'), abort: true })
  }

  /**
   * The first transport request of a connection negotiated anywhere in the fleet: it lives on
   * this server from now on, and serves the requests other servers forward to it.
   */
  async function adopt (f: ConnectionForwarding, id: string, kind: TransportKind): Promise<void> {
    const negotiated = await f.take(id)
    if (negotiated === undefined) return
    const connection = registry.createConnection(hub, negotiated.negotiateVersion, true, { connectionId: negotiated.connectionId, token: id })
    connection.statefulReconnect = negotiated.statefulReconnect
    // A WebSocket's requests all travel on its socket: nobody forwards to it
    if (kind === 'WebSockets') return
    try {
      await f.serve(id, serveForwarded(id), () => { lose(id) })
    } catch (err) {
      connection.close()
      throw err
    }
    registry.onReleased(id, () => { f.unserve(id) })
  }

  function unavailable (request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    request.log.warn({ err }, 'signalr: a transport request could not reach the backplane')
    return text(reply, 503, 'The backplane is unavailable.')
  }

  /**
   * A GET for a connection this server does not have: a poll goes to its owner; a first
   * request of any transport makes the connection live here. True when answered.
   */
  async function elsewhere (f: ConnectionForwarding, request: FastifyRequest, reply: FastifyReply, id: string): Promise<boolean> {
    const kind: TransportKind = isWebSocketUpgrade(request) ? 'WebSockets' : wantsEventStream(request) ? 'ServerSentEvents' : 'LongPolling'
    if (!o.transports.includes(kind)) return false
    if (kind === 'LongPolling') {
      const outcome = await f.forward(id, 'poll', EMPTY, o.longPollTimeout + 5000)
      if (outcome.kind !== 'nobody') {
        answerForwarded(reply, outcome, 'poll', f, id)
        return true
      }
    }
    await adopt(f, id, kind)
    return false
  }

  /** A POST or DELETE for a connection this server does not have. True when answered. */
  async function forwarded (f: ConnectionForwarding, reply: FastifyReply, id: string, op: ForwardedOp, body: Buffer): Promise<boolean> {
    const outcome = await f.forward(id, op, body, FORWARD_TIMEOUT_MS)
    if (outcome.kind === 'nobody') return false
    answerForwarded(reply, outcome, op, f, id)
    return true
  }

  async function post (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const id = queryValue(request.query, 'id')
    if (id === undefined || id === '') return text(reply, 400, 'Connection ID required')
    if (forwarding !== undefined && registry.connection(id) === undefined) {
      try {
        if (await forwarded(forwarding, reply, id, 'send', Buffer.isBuffer(request.body) ? request.body : EMPTY)) return reply
      } catch (err) {
        return unavailable(request, reply, err)
      }
    }
    await sendHere(id, request.body, reply, !textBody(request))
    return reply
  }

  async function del (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const id = queryValue(request.query, 'id')
    if (id === undefined || id === '') return text(reply, 400, 'Connection ID required')
    if (forwarding !== undefined && registry.connection(id) === undefined && registry.retiredTransport(id) === undefined) {
      try {
        if (await forwarded(forwarding, reply, id, 'delete', EMPTY)) return reply
      } catch (err) {
        return unavailable(request, reply, err)
      }
    }
    deleteHere(id, reply)
    return reply
  }

  async function methodNotAllowed (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return text(reply, 405, 'Method Not Allowed')
  }

  void app.register(async function signalrHubRoutes (scope) {
    // Transport bodies are raw bytes whatever the Content-Type says, or with none at all
    // (the .NET client sends none)
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => { done(null, body) })
    // @fastify/websocket, when the application registered it before these routes, wraps
    // every route's handler to close upgrades to routes without a wsHandler: ours upgrade
    // for themselves, so they get their own handlers back
    scope.addHook('onRoute', (route) => {
      const own = (route as RouteOptions & { [kHandler]?: RouteOptions['handler'] })[kHandler]
      if (own !== undefined) route.handler = own
    })
    const { preHandler, logLevel, config, constraints, ...hooks } = settings
    // The access_token query parameter must not reach the request logs
    const every = { logLevel, config, constraints, logSerializers: { req: redactingRequestSerializer } }
    const guarded = { ...every, ...hooks }
    const userPreHandlers = hookList(preHandler)
    const route = (options: RouteOptions): void => { scope.route({ ...options, [kHandler]: options.handler } as RouteOptions) }
    route({ method: 'POST', url: negotiatePath, ...guarded, preHandler: userPreHandlers, handler: negotiateHandler(hub, registry) })
    route({ method: ['GET', 'PUT', 'DELETE', 'PATCH'], url: negotiatePath, exposeHeadRoute: false, ...every, handler: methodNotAllowed })
    if (asyncapi !== undefined) {
      // The contract is guarded like the hub: the same hooks see this request first
      route({
        method: 'GET',
        url: base === '/' ? '/asyncapi.json' : base + '/asyncapi.json',
        ...guarded,
        preHandler: userPreHandlers,
        handler: async (request) => asyncapi(request)
      })
    }
    for (const url of paths) {
      route({ method: 'GET', url, ...guarded, exposeHeadRoute: false, preHandler: userPreHandlers, handler: get })
      route({ method: 'POST', url, ...guarded, bodyLimit, preHandler: userPreHandlers, handler: post })
      route({ method: 'DELETE', url, ...guarded, preHandler: userPreHandlers, handler: del })
      route({ method: ['PUT', 'PATCH'], url, ...every, handler: methodNotAllowed })
    }
  })
}
