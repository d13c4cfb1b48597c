// POST {hub}/negotiate: creates a connection and lists the transports this hub allows
// (signalr-wire.md §1). Errors the spec defines travel as {"error"} with HTTP 200.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidArgumentError } from '../errors.js'
import type { Endpoint, TransferFormat } from './endpoint.js'
import type { Registry } from '../registry.js'
import { newConnectionId } from '../connection.js'
import { queryValue } from './query.js'
import type { NegotiateRedirect } from '../../types/index.js'
import type { TransportKind } from './transport.js'

interface AvailableTransport { transport: TransportKind, transferFormats: TransferFormat[] }

export function availableTransports (hub: Endpoint): AvailableTransport[] {
  const both = hub.transferFormats
  const out: AvailableTransport[] = []
  // The order matters: clients try transports in the order the server lists them
  for (const kind of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const) {
    if (!hub.options.transports.includes(kind)) continue
    // SSE carries text only, so a binary protocol is never offered it
    const transferFormats = kind === 'ServerSentEvents' ? both.filter((f) => f === 'Text') : [...both]
    if (transferFormats.length > 0) out.push({ transport: kind, transferFormats })
  }
  return out
}

/** The spec's redirect answer; a value no client could follow is the application's bug, answered with a 500. */
function redirectBody (redirect: NegotiateRedirect): string {
  const { url, accessToken } = redirect
  let parsed: URL | undefined
  try { parsed = typeof url === 'string' ? new URL(url) : undefined } catch {}
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new InvalidArgumentError('negotiate redirect', 'url must be an absolute http or https URL')
  }
  if (accessToken !== undefined && typeof accessToken !== 'string') throw new InvalidArgumentError('negotiate redirect', 'accessToken must be a string')
  return JSON.stringify(accessToken === undefined ? { url } : { url, accessToken })
}

export function negotiateHandler (hub: Endpoint, registry: Registry) {
  return async function negotiate (request: FastifyRequest, reply: FastifyReply): Promise<string> {
    void reply.header('content-type', 'application/json; charset=utf-8')
    void reply.header('cache-control', 'no-cache, no-store')
    if (registry.closing) {
      return JSON.stringify({ error: 'The server is shutting down.' })
    }
    if (hub.negotiateRedirect !== undefined) {
      const redirect = await hub.negotiateRedirect(request)
      if (redirect !== undefined && redirect !== null) return redirectBody(redirect)
    }
    const raw = queryValue(request.query, 'negotiateVersion')
    let requested = 0
    if (raw !== undefined) {
      if (!/^-?\d+$/.test(raw.trim())) {
        request.log.info({ negotiateVersion: raw }, 'signalr: negotiate with a non-integer version')
        return JSON.stringify({ error: 'The client requested a non-integer protocol version.' })
      }
      requested = Number.parseInt(raw, 10)
    }
    // A missing version is 0, as in ASP.NET Core (MinimumProtocolVersion)
    if (requested < 0 || requested < hub.options.minimumNegotiateVersion) {
      request.log.info({ negotiateVersion: requested }, 'signalr: negotiate with a version the hub does not accept')
      return JSON.stringify({ error: `The client requested version '${requested}', but the server does not support this version.` })
    }
    const version = Math.min(requested, 1)
    const stateful = hub.options.allowStatefulReconnects && queryValue(request.query, 'useStatefulReconnect')?.toLowerCase() === 'true'
    let connectionId: string
    let token: string
    const forwarding = hub.forwarding
    if (forwarding === undefined) {
      const connection = registry.createConnection(hub, version)
      connection.statefulReconnect = stateful
      connectionId = connection.connectionId
      token = connection.token
    } else {
      // Request forwarding: the connection lives where its first transport request lands,
      // on any server of the fleet; until then Redis holds it, under a hash of its token
      connectionId = newConnectionId()
      token = version > 0 ? newConnectionId() : connectionId
      try {
        await forwarding.remember(token, { connectionId, negotiateVersion: version, statefulReconnect: stateful }, hub.options.disconnectTimeout)
      } catch (err) {
        request.log.warn({ err }, 'signalr: negotiate could not reach the backplane')
        void reply.code(503)
        return JSON.stringify({ error: 'The backplane is unavailable.' })
      }
    }
    // Key order is the .NET writer's (NegotiateProtocol.WriteResponse)
    const body: Record<string, unknown> = {}
    if (stateful) body.useStatefulReconnect = true
    body.negotiateVersion = version
    body.connectionId = connectionId
    if (version > 0) body.connectionToken = token
    body.availableTransports = availableTransports(hub)
    return JSON.stringify(body)
  }
}
