// The HTTP surface of one hub: negotiate, the transport GET (WebSockets upgrade, SSE or a
// long poll), the POST send endpoint and DELETE, each guarded by the hub's Fastify hooks.
// The routes live in their own encapsulated scope so that the raw-bytes body parser they
// need never touches the application's routes.
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import type { WebSocket } from 'ws'
import type {} from '@fastify/websocket'
import type { Connection } from '../connection.js'
import type { MappedHub } from '../hub/mapped-hub.js'
import type { Registry } from '../registry.js'
import type { HubRouteOptions } from '../../types/index.js'
import { LongPollingTransport } from './long-polling.js'
import { negotiateHandler } from './negotiate.js'
import { redactingRequestSerializer } from './access-token.js'
import { queryValue } from './query.js'
import { ServerSentEventsTransport } from './server-sent-events.js'
import type { TransportKind } from './transport.js'
import { WebSocketTransport } from './websocket.js'

type Hooks = Pick<HubRouteOptions, 'onRequest' | 'preParsing' | 'preValidation' | 'preHandler' | 'onResponse' | 'onError'>

const claimedByRequest = new WeakMap<FastifyRequest, Connection>()

function text (reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain; charset=utf-8').send(body)
}

function hookList (hook: Hooks['preHandler']): preHandlerHookHandler[] {
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

export function mapHubRoutes (app: FastifyInstance, hub: MappedHub, registry: Registry, hooks: Hooks, serveAsyncApi = false): void {
  const base = hub.path.length > 1 && hub.path.endsWith('/') ? hub.path.slice(0, -1) : hub.path
  const paths = base === '/' ? ['/'] : [base, base + '/']
  const negotiatePath = base === '/' ? '/negotiate' : base + '/negotiate'
  const o = hub.options
  const bodyLimit = o.maximumReceiveMessageSize === 0 ? undefined : Math.max(1_048_576, o.maximumReceiveMessageSize * 4)

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

  /** Runs after the application's hooks, before the upgrade, so refusals are plain HTTP. */
  const beforeUpgrade: preHandlerHookHandler = function (request, reply, done) {
    if (!request.ws) {
      done()
      return
    }
    if (!o.transports.includes('WebSockets')) {
      text(reply, 404, notSupported('WebSockets'))
      return
    }
    const origin = request.headers.origin
    if (o.allowedOrigins !== undefined && origin !== undefined && !o.allowedOrigins.includes(origin)) {
      request.log.warn({ origin }, 'signalr: WebSocket upgrade from a disallowed origin refused')
      text(reply, 403, 'Origin not allowed')
      return
    }
    let connection: Connection | undefined
    if (queryValue(request.query, 'id') === undefined) {
      // skipNegotiation: the client opens the socket with no id and gets v0 semantics
      if (registry.closing) {
        text(reply, 503, 'The server is shutting down.')
        return
      }
      connection = registry.createConnection(hub, 0, false)
    } else {
      connection = lookup(request, reply, 'WebSockets')
      if (connection === undefined) return
      if (connection.claimed) {
        text(reply, 409, 'Connection ID is already in use by another WebSocket.')
        return
      }
    }
    connection.claim('WebSockets')
    claimedByRequest.set(request, connection)
    done()
  }

  function wsHandler (socket: WebSocket, request: FastifyRequest): void {
    const connection = claimedByRequest.get(request)
    if (connection === undefined) {
      socket.close(1011)
      return
    }
    claimedByRequest.delete(request)
    const transport = new WebSocketTransport(socket, connection)
    if (connection.state === 'connected') connection.reattach(transport)
    else connection.attach(transport, request)
  }

  async function get (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const sse = wantsEventStream(request)
    const kind: TransportKind = sse ? 'ServerSentEvents' : 'LongPolling'
    if (!o.transports.includes(kind)) return text(reply, 404, notSupported(kind))
    if (!sse) {
      const id = queryValue(request.query, 'id')
      const retired = id === undefined ? undefined : registry.retiredLongPolling(id)
      if (retired !== undefined) {
        retired.drain(reply)
        return reply
      }
    }
    const connection = lookup(request, reply, kind)
    if (connection === undefined) return reply
    if (sse) {
      if (connection.claimed) return text(reply, 409, 'Connection already has an active Server-Sent Events stream.')
      connection.claim('ServerSentEvents')
      reply.hijack()
      connection.attach(new ServerSentEventsTransport(reply.raw, connection), request)
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

  async function post (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const id = queryValue(request.query, 'id')
    if (id === undefined || id === '') return text(reply, 400, 'Connection ID required')
    const connection = registry.connection(id)
    if (connection === undefined || connection.host !== hub) return text(reply, 404, 'No Connection with that ID')
    if (connection.transportKind === 'WebSockets') return text(reply, 405, 'POST requests are not allowed for WebSocket connections.')
    if (connection.transport === undefined) return text(reply, 400, 'No transport is connected for this connection yet.')
    const body = request.body
    if (Buffer.isBuffer(body)) connection.receive(body)
    // While the connection's messages back up, the answer waits: the client sends its next
    // POST only after this one, so it is held back as a paused socket would be
    await connection.readable()
    return text(reply, 200, '')
  }

  async function del (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const id = queryValue(request.query, 'id')
    if (id === undefined || id === '') return text(reply, 400, 'Connection ID required')
    // Already ended (the client's Close message often wins the race with its DELETE)
    if (registry.retiredLongPolling(id) !== undefined) return text(reply, 202, '')
    const connection = registry.connection(id)
    if (connection === undefined || connection.host !== hub) return text(reply, 404, 'No Connection with that ID')
    if (!(connection.transport instanceof LongPollingTransport)) {
      return text(reply, 400, 'Cannot terminate this connection using the DELETE endpoint.')
    }
    connection.transport.terminate()
    return text(reply, 202, '')
  }

  async function methodNotAllowed (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return text(reply, 405, 'Method Not Allowed')
  }

  void app.register(async function signalrHubRoutes (scope) {
    // Transport bodies are raw bytes whatever the Content-Type says, or with none at all
    // (the .NET client sends none)
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => { done(null, body) })
    const common = {
      // The access_token query parameter must not reach the request logs
      logSerializers: { req: redactingRequestSerializer },
      onRequest: hooks.onRequest,
      preParsing: hooks.preParsing,
      preValidation: hooks.preValidation,
      onResponse: hooks.onResponse,
      onError: hooks.onError
    }
    const userPreHandlers = hookList(hooks.preHandler)
    scope.route({ method: 'POST', url: negotiatePath, ...common, preHandler: userPreHandlers, handler: negotiateHandler(hub, registry) })
    scope.route({ method: ['GET', 'PUT', 'DELETE', 'PATCH'], url: negotiatePath, exposeHeadRoute: false, logSerializers: common.logSerializers, handler: methodNotAllowed })
    if (serveAsyncApi) {
      // The contract is guarded like the hub: the same hooks see this request first
      scope.route({
        method: 'GET',
        url: base === '/' ? '/asyncapi.json' : base + '/asyncapi.json',
        ...common,
        preHandler: userPreHandlers,
        handler: async (request) => hub.hubContext.asyncapi({ host: request.host, secure: request.protocol === 'https' })
      })
    }
    for (const url of paths) {
      scope.route({ method: 'GET', url, ...common, exposeHeadRoute: false, preHandler: [...userPreHandlers, beforeUpgrade], handler: get, wsHandler })
      scope.route({ method: 'POST', url, ...common, bodyLimit, preHandler: userPreHandlers, handler: post })
      scope.route({ method: 'DELETE', url, ...common, preHandler: userPreHandlers, handler: del })
      scope.route({ method: ['PUT', 'PATCH'], url, logSerializers: common.logSerializers, handler: methodNotAllowed })
    }
  })
}
