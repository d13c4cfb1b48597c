// The SignalR hub messages as plain objects, shared by both hub protocols.
// Shapes follow src/SignalR/docs/specs/HubProtocol.md; see shared/reference/signalr-wire.md §4.

export const MessageType = {
  Invocation: 1,
  StreamItem: 2,
  Completion: 3,
  StreamInvocation: 4,
  CancelInvocation: 5,
  Ping: 6,
  Close: 7,
  Ack: 8,
  Sequence: 9
} as const
export type MessageTypeValue = typeof MessageType[keyof typeof MessageType]

export type Headers = Record<string, string>

/**
 * Set by a reader on a message whose payload held a key the server will not pass on
 * (`__proto__`): the key has been dropped, and the dispatcher answers the message with an
 * error instead of running anything with its payload.
 */
export interface Refusable {
  forbiddenKey?: string
}

export interface InvocationMessage extends Refusable {
  type: 1
  headers?: Headers
  invocationId?: string
  target: string
  arguments: unknown[]
  streamIds?: string[]
}

export interface StreamItemMessage extends Refusable {
  type: 2
  headers?: Headers
  invocationId: string
  item: unknown
}

export interface CompletionMessage extends Refusable {
  type: 3
  headers?: Headers
  invocationId: string
  // present (possibly undefined-valued) only in the kind it belongs to; see hasResult
  result?: unknown
  error?: string
  // true when the Completion carries a result (null counts): the .NET server always sends
  // `result: null` for a void method, so writers must be told explicitly
  hasResult?: boolean
}

export interface StreamInvocationMessage extends Refusable {
  type: 4
  headers?: Headers
  invocationId: string
  target: string
  arguments: unknown[]
  streamIds?: string[]
}

export interface CancelInvocationMessage {
  type: 5
  headers?: Headers
  invocationId: string
}

export interface PingMessage { type: 6 }

export interface CloseMessage {
  type: 7
  error?: string
  allowReconnect?: boolean
}

export interface AckMessage { type: 8, sequenceId: number }
export interface SequenceMessage { type: 9, sequenceId: number }

export type HubMessage =
  | InvocationMessage
  | StreamItemMessage
  | CompletionMessage
  | StreamInvocationMessage
  | CancelInvocationMessage
  | PingMessage
  | CloseMessage
  | AckMessage
  | SequenceMessage

export const FORBIDDEN_KEY = '__proto__'

/** Flags a message whose payload held FORBIDDEN_KEY; other kinds never carry it anywhere it is used. */
export function markForbiddenKey (message: HubMessage): void {
  if (message.type <= 4) (message as Refusable).forbiddenKey = FORBIDDEN_KEY
}

/** Messages that count for stateful reconnect's sequence ids (types 1–5). */
export function isTrackable (message: HubMessage): boolean {
  return message.type <= 5
}
