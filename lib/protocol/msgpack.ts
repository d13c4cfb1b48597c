// The MessagePack hub protocol: each message is one MessagePack array in a VarInt-length
// frame. Reading follows the .NET reader (minimum lengths only, trailing items ignored,
// unknown types skipped); writing emits the .NET writer's layouts (signalr-wire.md §4.3).
import { Decoder, EXT_TIMESTAMP, Encoder, ExtensionCodec } from '@msgpack/msgpack'
import type { ExtensionCodecType } from '@msgpack/msgpack'
import { InvalidMessageError } from '../errors.js'
import { readFrames, writeVarIntFrame } from './binary-framing.js'
import { scanMessagePack } from './msgpack-scan.js'
import type { HubProtocol, ParseResult } from './hub-protocol.js'
import type { Headers, HubMessage, InvocationMessage, StreamInvocationMessage } from './messages.js'
import { markForbiddenKey, MessageType } from './messages.js'

const ERROR_RESULT = 1
const VOID_RESULT = 2
const NON_VOID_RESULT = 3

// Fixed bytes in every client and server: [6]
const PING_FRAME = Buffer.from([0x02, 0x91, 0x06])
// Shared: nothing downstream writes to a Ping
const PING: HubMessage = Object.freeze({ type: MessageType.Ping })

const MESSAGE_NAMES: Record<number, string> = {
  1: 'Invocation',
  2: 'StreamItem',
  3: 'Completion',
  4: 'StreamInvocation',
  5: 'CancelInvocation',
  7: 'Close',
  8: 'Ack',
  9: 'Sequence'
}

/**
 * Timestamps decode to Date as with the default codec. Any other extension type is refused:
 * a hub method would get an opaque ExtData it cannot have asked for, and relaying it would
 * push bytes we never understood to other clients. The .NET server also refuses unknown
 * extensions for object-typed values.
 */
const decoderExtensions: ExtensionCodecType<undefined> = {
  tryToEncode: (object, context) => ExtensionCodec.defaultCodec.tryToEncode(object, context),
  decode (data, extType, context) {
    if (extType !== EXT_TIMESTAMP) throw new InvalidMessageError(`MessagePack extension type ${extType} is not supported.`)
    return ExtensionCodec.defaultCodec.decode(data, extType, context)
  }
}

function fail (text: string): never {
  throw new InvalidMessageError(text)
}

function invalid (kind: string, detail: string): never {
  fail(`Invalid payload for ${kind} message: ${detail}`)
}

function isPlainMap (v: unknown): v is Record<string, unknown> {
  // The decoder builds maps as plain objects; a Date (timestamp), Uint8Array (bin) or array
  // is not a map even though typeof says object
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype
}

function readHeaders (kind: string, v: unknown): Headers | undefined {
  if (!isPlainMap(v)) invalid(kind, 'headers must be a map.')
  // Null prototype: header names are client-chosen. (The decoder already refuses a
  // '__proto__' key anywhere in a message, so no decoded map can have a swapped prototype.)
  const out: Headers = Object.create(null)
  let any = false
  for (const [key, value] of Object.entries(v)) {
    // Empty names or values are refused by the .NET reader too
    if (key === '') invalid(kind, 'a header name is empty.')
    if (typeof value !== 'string' || value === '') invalid(kind, `header '${key}' must be a non-empty string.`)
    out[key] = value
    any = true
  }
  return any ? out : undefined
}

function requireId (kind: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') invalid(kind, 'invocationId must be a non-empty string.')
  return v
}

function requireTarget (kind: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') invalid(kind, 'target must be a non-empty string.')
  return v
}

function requireArguments (kind: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) invalid(kind, 'arguments must be an array.')
  return v
}

function readStreamIds (kind: string, items: unknown[]): string[] | undefined {
  // Older clients send 5 items: streamIds exist only past that (.NET reads them the same way)
  if (items.length <= 5 || items[5] === null) return undefined
  const v = items[5]
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) {
    invalid(kind, 'streamIds must be an array of non-empty strings.')
  }
  return v.length > 0 ? v as string[] : undefined
}

function requireSequenceId (kind: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) invalid(kind, 'sequenceId must be a non-negative integer.')
  return v
}

function needItems (items: unknown[], count: number, kind: string): void {
  if (items.length < count) fail(`Invalid payload for ${kind} message.`)
}

/** Turns one decoded MessagePack value into a hub message, or undefined for an unknown type. */
export function toHubMessage (value: unknown): HubMessage | undefined {
  if (!Array.isArray(value) || value.length === 0) fail('Invalid payload: a message must be a non-empty MessagePack array.')
  const items: unknown[] = value
  const type = items[0]
  if (typeof type !== 'number' || !Number.isInteger(type)) fail('Invalid payload: the message type must be an integer.')
  const kind = MESSAGE_NAMES[type]
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      needItems(items, 5, kind)
      const headers = readHeaders(kind, items[1])
      const target = requireTarget(kind, items[3])
      const args = requireArguments(kind, items[4])
      const streamIds = readStreamIds(kind, items)
      let invocationId: string | undefined
      if (type === MessageType.StreamInvocation) {
        invocationId = requireId(kind, items[2])
      } else {
        const id = items[2]
        // nil or '' is a non-blocking call, as in the .NET reader
        if (id !== null && typeof id !== 'string') invalid(kind, 'invocationId must be a string or nil.')
        if (id !== null && id !== '') invocationId = id
      }
      // Built in place, not spread together: this runs for every call a client makes.
      // Absent fields stay absent (not undefined), in the order the spreads gave them
      const message: Partial<InvocationMessage | StreamInvocationMessage> & Record<string, unknown> = invocationId === undefined ? { type } : { type, invocationId }
      if (headers !== undefined) message.headers = headers
      message.target = target
      message.arguments = args
      if (streamIds !== undefined) message.streamIds = streamIds
      return message as HubMessage
    }
    case MessageType.StreamItem: {
      needItems(items, 4, kind)
      const headers = readHeaders(kind, items[1])
      const invocationId = requireId(kind, items[2])
      return { type, ...(headers !== undefined && { headers }), invocationId, item: items[3] }
    }
    case MessageType.Completion: {
      needItems(items, 4, kind)
      const headers = readHeaders(kind, items[1])
      const invocationId = requireId(kind, items[2])
      const base = { type, ...(headers !== undefined && { headers }), invocationId }
      switch (items[3]) {
        case ERROR_RESULT: {
          needItems(items, 5, kind)
          const error = items[4]
          if (typeof error !== 'string') invalid(kind, 'error must be a string.')
          return { ...base, error }
        }
        case VOID_RESULT:
          return { ...base, hasResult: false }
        case NON_VOID_RESULT:
          needItems(items, 5, kind)
          return { ...base, result: items[4], hasResult: true }
        default:
          return invalid(kind, 'invalid invocation result kind.')
      }
    }
    case MessageType.CancelInvocation: {
      needItems(items, 3, kind)
      const headers = readHeaders(kind, items[1])
      return { type, ...(headers !== undefined && { headers }), invocationId: requireId(kind, items[2]) }
    }
    case MessageType.Ping:
      return { type }
    case MessageType.Close: {
      needItems(items, 2, kind)
      const error = items[1]
      if (error !== null && typeof error !== 'string') invalid(kind, 'error must be a string or nil.')
      let allowReconnect = false
      if (items.length > 2) {
        if (typeof items[2] !== 'boolean') invalid(kind, 'allowReconnect must be a boolean.')
        allowReconnect = items[2]
      }
      // An empty error string is still an error, as in the .NET reader
      return { type, ...(error !== null && { error }), allowReconnect }
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      needItems(items, 2, kind)
      return { type, sequenceId: requireSequenceId(kind, items[1]) }
    default:
      return undefined
  }
}

// Shared: the encoder only reads it
const NO_HEADERS: Headers = Object.freeze({})

function headersOrEmpty (headers: Headers | undefined): Headers {
  return headers ?? NO_HEADERS
}

/** The MessagePack array for a message, in the .NET writer's layout. */
export function toMessagePackArray (m: HubMessage): unknown[] {
  switch (m.type) {
    case MessageType.Invocation:
      // Always 6 items, streamIds empty when none: what the .NET server writes
      return [m.type, headersOrEmpty(m.headers), m.invocationId === undefined || m.invocationId === '' ? null : m.invocationId,
        m.target, m.arguments, m.streamIds ?? []]
    case MessageType.StreamInvocation:
      return [m.type, headersOrEmpty(m.headers), m.invocationId, m.target, m.arguments, m.streamIds ?? []]
    case MessageType.StreamItem:
      return [m.type, headersOrEmpty(m.headers), m.invocationId, m.item]
    case MessageType.Completion:
      if (m.error !== undefined) return [m.type, headersOrEmpty(m.headers), m.invocationId, ERROR_RESULT, m.error]
      if (m.hasResult === true) return [m.type, headersOrEmpty(m.headers), m.invocationId, NON_VOID_RESULT, m.result]
      return [m.type, headersOrEmpty(m.headers), m.invocationId, VOID_RESULT]
    case MessageType.CancelInvocation:
      return [m.type, headersOrEmpty(m.headers), m.invocationId]
    case MessageType.Ping:
      return [m.type]
    case MessageType.Close:
      // .NET writes nil for an empty error, and always the third item
      return [m.type, m.error === undefined || m.error === '' ? null : m.error, m.allowReconnect === true]
    case MessageType.Ack:
    case MessageType.Sequence:
      return [m.type, m.sequenceId]
  }
}

// Nine bytes, like '__proto__', that no client can mean
const PROTO_STAND_IN = Buffer.from('\u0000_proto_\u0000')

function describeDecodeError (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // The decoder reports a value cut short by the frame as a bare DataView RangeError
  if (err instanceof RangeError && !err.message.startsWith('Extra')) return 'the message ends inside a value.'
  return err.message
}

export class MessagePackHubProtocol implements HubProtocol {
  readonly name = 'messagepack'
  readonly version = 2
  readonly transferFormat = 'Binary' as const

  // One of each, shared: both are re-entrancy safe (they clone themselves if re-entered)
  private readonly encoder = new Encoder()
  private readonly decoder = new Decoder({ useBigInt64: false, extensionCodec: decoderExtensions })

  parse (data: Buffer, maxMessageSize: number, maxMessages?: number): ParseResult {
    const messages: HubMessage[] = []
    let read = 0
    const consumed = readFrames(data, maxMessageSize, (body) => {
      read++
      if (body.length === 0) fail('Invalid payload: empty message.')
      // Pings are most of what clients send: [6] needs no decoder
      if (body.length === 2 && body[0] === 0x91 && body[1] === 0x06) {
        messages.push(PING)
        return
      }
      // Before anything is allocated from what the message declares
      const { protoKeys } = scanMessagePack(body)
      // bin values decode as views of the input: give them a private copy so they neither
      // alias the transport's buffer nor keep all of it alive
      const bytes = new Uint8Array(body)
      // The decoder refuses a '__proto__' key outright; the key is renamed in our copy so
      // that the message still decodes and its sender gets an answer, not a disconnect
      for (const at of protoKeys) bytes.set(PROTO_STAND_IN, at)
      let value: unknown
      try {
        value = this.decoder.decode(bytes)
      } catch (err) {
        if (err instanceof InvalidMessageError) throw err
        fail(`Error reading MessagePack: ${describeDecodeError(err)}`)
      }
      const message = toHubMessage(value)
      if (message === undefined) return
      if (protoKeys.length > 0) markForbiddenKey(message)
      messages.push(message)
    }, maxMessages)
    return { messages, consumed, read }
  }

  write (message: HubMessage): Buffer {
    if (message.type === MessageType.Ping) return Buffer.from(PING_FRAME)
    // The shared-ref result is only valid until the next encode, and framing copies it now
    return writeVarIntFrame(this.encoder.encodeSharedRef(toMessagePackArray(message)))
  }
}

export const messagePackHubProtocol = new MessagePackHubProtocol()
