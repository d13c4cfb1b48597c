// signalr.connection.status for a connection that ended: the semantic conventions' three
// well-known values, chosen from why it ended.
import { ClientTimeoutError, DisconnectTimeoutError, SendTimeoutError } from '../errors.js'

export type ConnectionStatus = 'normal_closure' | 'timeout' | 'app_shutdown'

export function closeStatus (error: Error | undefined, shuttingDown: boolean, handshakeTimedOut: boolean): ConnectionStatus {
  if (shuttingDown) return 'app_shutdown'
  if (handshakeTimedOut || error instanceof ClientTimeoutError || error instanceof SendTimeoutError || error instanceof DisconnectTimeoutError) return 'timeout'
  return 'normal_closure'
}

/** signalr.transport: the conventions' snake_case names of our transport kinds. */
export const TRANSPORT_NAMES = {
  WebSockets: 'web_sockets',
  ServerSentEvents: 'server_sent_events',
  LongPolling: 'long_polling'
} as const
