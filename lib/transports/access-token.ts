// Bearer tokens on hub requests. Browsers cannot set headers on WebSocket and EventSource
// requests, so the official clients put the token in the `access_token` query parameter
// there; the token must then be kept out of request logs (signalr-wire.md §7).
import type { FastifyRequest } from 'fastify'
import { queryValue } from './query.js'

/**
 * The access token of a hub request: `Authorization: Bearer` first, then the
 * `access_token` query parameter. Hand it to @fastify/jwt's `extractToken`.
 */
export function accessToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (match !== null) return match[1]
  }
  const query = queryValue(request.query, 'access_token')
  return query === undefined || query === '' ? undefined : query
}

// The connection token (`id`) is a secret too: it authorizes every transport request
const TOKEN_IN_QUERY = /([?&](?:access_token|id)=)[^&#]*/gi

/** The URL with the access token and the connection token taken out of its query. */
export function redactAccessToken (url: string): string {
  return url.replace(TOKEN_IN_QUERY, '$1[redacted]')
}

/** Fastify's default `req` log serializer, with the access token taken out of the URL. */
export function redactingRequestSerializer (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactAccessToken(request.url),
    version: request.headers?.['accept-version'],
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
