// Every error the plugin makes. Codes carry the FST_SIGNALR_ prefix so applications can
// match on them; messages take %s arguments in the @fastify/error style. Errors that end a
// connection or reach a client (what onDisconnected sees) carry no HTTP statusCode: they
// never become an HTTP answer.
import createError from '@fastify/error'

/** A falsy statusCode makes @fastify/error leave it undefined (its default is 500). */
const NO_STATUS = 0

export const InvalidOptionError = createError<[string, string]>(
  'FST_SIGNALR_INVALID_OPTION', 'Invalid fastify-signalr option %s: %s', 500, TypeError)

export const InvalidHubError = createError<[string]>(
  'FST_SIGNALR_INVALID_HUB', 'Invalid hub definition: %s', 500, TypeError)

export const DuplicateHubError = createError<[string]>(
  'FST_SIGNALR_DUPLICATE_HUB', "A hub is already mapped at path '%s'", 500)

export const UnknownHubError = createError<[string]>(
  'FST_SIGNALR_UNKNOWN_HUB', "No hub is mapped at path '%s'", 500)

export const HubMismatchError = createError<[string]>(
  'FST_SIGNALR_HUB_MISMATCH', "The hub mapped at '%s' is not the definition given to app.signalr.hub()", 500)

export const HubAfterStartError = createError<[string]>(
  'FST_SIGNALR_HUB_AFTER_START', "Cannot map a hub at '%s': the app has already started (ready() or listen()). Call app.hub() before that, as for any route.", 500)

export const InvalidArgumentError = createError<[string, string]>(
  'FST_SIGNALR_INVALID_ARGUMENT', 'Invalid %s: %s', 500, TypeError)

/** A frame or message that breaks the hub protocol: the connection ends with an error Close. */
export const InvalidMessageError = createError<[string]>(
  'FST_SIGNALR_INVALID_MESSAGE', '%s', NO_STATUS)

/** A single message above maximumReceiveMessageSize. */
export const MessageTooLargeError = createError<[number]>(
  'FST_SIGNALR_MESSAGE_TOO_LARGE', 'The maximum message size of %sB was exceeded.', NO_STATUS)

export const HandshakeError = createError<[string]>(
  'FST_SIGNALR_HANDSHAKE', '%s', NO_STATUS)

/**
 * What a hub method throws to send its own message to the caller in every mode, like a
 * .NET HubException: the client sees "An unexpected error occurred invoking 'M' on the
 * server. HubException: <message>".
 */
export const HubError = createError<[string]>('FST_SIGNALR_HUB_ERROR', '%s', NO_STATUS)

/**
 * A message's arguments or result the hub protocol cannot write (a BigInt in JSON, a cycle):
 * the send rejects with it, so the hub method's caller hears of it instead of a silent drop.
 */
export const UnserializableMessageError = createError<[string, string, { cause: unknown }]>(
  'FST_SIGNALR_UNSERIALIZABLE', "A message could not be serialised for the '%s' protocol: %s", NO_STATUS)

export const ConnectionClosedError = createError<[string]>(
  'FST_SIGNALR_CONNECTION_CLOSED', '%s', NO_STATUS)

/**
 * The client stayed away past disconnectTimeout (no poll, or no stateful reconnect): a
 * ConnectionClosedError that telemetry reports as a timeout.
 */
export const DisconnectTimeoutError = createError<[string]>(
  'FST_SIGNALR_DISCONNECT_TIMEOUT', '%s', NO_STATUS, ConnectionClosedError as unknown as ErrorConstructor)

export const ClientResultError = createError<[string]>(
  'FST_SIGNALR_CLIENT_RESULT', '%s', 500)

/**
 * The client answered a client result with an error. It is a HubError too, so a hub method
 * that lets it propagate shows the client's text to its caller, as ASP.NET Core does.
 */
export const ClientResultRejectedError = createError<[string]>(
  'FST_SIGNALR_CLIENT_RESULT', '%s', 500, HubError as unknown as ErrorConstructor)

export const ClientResultTimeoutError = createError<[string, number]>(
  'FST_SIGNALR_CLIENT_RESULT_TIMEOUT', "Client result for '%s' timed out after %sms.", 500)

export const ClientTimeoutError = createError(
  'FST_SIGNALR_CLIENT_TIMEOUT', "Client hasn't sent a message/ping within the configured ClientTimeoutInterval.", NO_STATUS)

export const SendTimeoutError = createError<[number]>(
  'FST_SIGNALR_SEND_TIMEOUT', 'A transport send did not complete within %sms: the client is not reading.', NO_STATUS)

export const OutboundBufferFullError = createError<[number]>(
  'FST_SIGNALR_OUTBOUND_BUFFER_FULL', 'More than %s bytes were waiting for a client that is not reading.', NO_STATUS)

export const ServerShutdownError = createError(
  'FST_SIGNALR_SHUTDOWN', 'The server is shutting down.', NO_STATUS)

/** A client answered a client result with a value its method's `returns` schema refuses. */
export const InvalidClientResultError = createError<[string, string, string]>(
  'FST_SIGNALR_INVALID_CLIENT_RESULT', "The result of client method '%s' from connection '%s' is invalid: %s.", 500)

/** With validateClientArguments on: a send() or invoke() whose arguments the `client` schemas refuse. */
export const InvalidClientArgumentError = createError<[string, string]>(
  'FST_SIGNALR_INVALID_CLIENT_ARGUMENT', "Invalid call of client method '%s': %s.", 500, TypeError)

/** The Redis backplane could not carry a send, a group change or a presence query in time. */
export const BackplaneUnavailableError = createError<[string]>(
  'FST_SIGNALR_BACKPLANE_UNAVAILABLE', 'The Redis backplane is unavailable: %s', 503)

/** No server owned the connection of a group change within ackTimeout (ASP.NET Core waits 30 s too). */
export const BackplaneAckTimeoutError = createError<[string, string, number]>(
  'FST_SIGNALR_BACKPLANE_ACK_TIMEOUT', "No server acknowledged the group change of connection '%s' (group '%s') within %sms.", 504)

/** signalrAdmin was registered where app.signalr and app.hub do not exist. */
export const AdminWithoutPluginError = createError(
  'FST_SIGNALR_ADMIN_WITHOUT_PLUGIN', 'signalrAdmin needs fastify-signalr: register it first (await app.register(signalr)), in the same scope or a parent one', 500)

/** The admin page runs the official browser client, which the application has not installed. */
export const AdminClientMissingError = createError<[string]>(
  'FST_SIGNALR_ADMIN_CLIENT_MISSING', "signalrAdmin serves the official browser client from the optional peer dependency '@microsoft/signalr', which cannot be found (%s): npm install @microsoft/signalr", 500)
