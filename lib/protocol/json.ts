// The JSON hub protocol: one JSON object per record-separated record. Reading accepts any
// field order and ignores unknown fields and unknown types, as the .NET reader does;
// writing emits the fields in the .NET writer's order (signalr-wire.md §4.2).
import { InvalidMessageError } from '../errors.js'
import type { HubProtocol, ParseResult } from './hub-protocol.js'
import type { CompletionMessage, Headers, HubMessage } from './messages.js'
import { FORBIDDEN_KEY, markForbiddenKey, MessageType } from './messages.js'
import { frameText, readRecords } from './text-framing.js'

type Json = Record<string, unknown>

function fail (text: string): never {
  throw new InvalidMessageError(text)
}

function requireString (o: Json, key: string): string {
  const v = o[key]
  if (v === undefined) fail(`Missing required property '${key}'.`)
  if (typeof v !== 'string') fail(`Expected '${key}' to be of type String.`)
  return v
}

function optionalString (o: Json, key: string): string | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') fail(`Expected '${key}' to be of type String.`)
  return v
}

function requireArray (o: Json, key: string): unknown[] {
  const v = o[key]
  if (v === undefined) fail(`Missing required property '${key}'.`)
  if (!Array.isArray(v)) fail(`Expected '${key}' to be of type Array.`)
  return v
}

function optionalStreamIds (o: Json): string[] | undefined {
  const v = o.streamIds
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) fail("Expected 'streamIds' to be an array of String.")
  return v.length > 0 ? v as string[] : undefined
}

function optionalHeaders (o: Json): Headers | undefined {
  const v = o.headers
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) fail("Expected 'headers' to be of type Object.")
  // A null-prototype copy: header names are client-chosen, so '__proto__' must stay a plain key
  const out: Headers = Object.create(null)
  let any = false
  for (const [k, val] of Object.entries(v as Json)) {
    if (typeof val !== 'string') fail(`Expected header '${k}' to be of type String.`)
    out[k] = val
    any = true
  }
  return any ? out : undefined
}

function requireSequenceId (o: Json): number {
  const v = o.sequenceId
  if (v === undefined) fail("Missing required property 'sequenceId'.")
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail("Expected 'sequenceId' to be a non-negative integer.")
  return v
}

/** Turns one parsed JSON value into a hub message, or undefined for an unknown type. */
export function toHubMessage (value: unknown): HubMessage | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('Expected a JSON object.')
  const o = value as Json
  const type = o.type
  if (type === undefined) fail("Missing required property 'type'.")
  if (typeof type !== 'number') fail("Expected 'type' to be of type Integer.")
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const invocationId = optionalString(o, 'invocationId')
      const target = requireString(o, 'target')
      const args = requireArray(o, 'arguments')
      const streamIds = optionalStreamIds(o)
      const headers = optionalHeaders(o)
      if (type === MessageType.StreamInvocation) {
        if (invocationId === undefined || invocationId === '') fail("Missing required property 'invocationId'.")
        return { type, invocationId, target, arguments: args, streamIds, headers }
      }
      // The .NET reader maps an empty id to a non-blocking call
      return { type, invocationId: invocationId === '' ? undefined : invocationId, target, arguments: args, streamIds, headers }
    }
    case MessageType.StreamItem: {
      const invocationId = requireString(o, 'invocationId')
      if (!('item' in o)) fail("Missing required property 'item'.")
      return { type, invocationId, item: o.item, headers: optionalHeaders(o) }
    }
    case MessageType.Completion: {
      const invocationId = requireString(o, 'invocationId')
      const error = optionalString(o, 'error')
      const headers = optionalHeaders(o)
      if (error !== undefined) {
        if ('result' in o && o.result !== null && o.result !== undefined) fail('The result and error properties of a completion cannot both be set.')
        return { type, invocationId, error, headers }
      }
      if ('result' in o) return { type, invocationId, result: o.result, hasResult: true, headers }
      return { type, invocationId, hasResult: false, headers }
    }
    case MessageType.CancelInvocation:
      return { type, invocationId: requireString(o, 'invocationId'), headers: optionalHeaders(o) }
    case MessageType.Ping:
      return { type }
    case MessageType.Close: {
      const error = optionalString(o, 'error')
      const ar = o.allowReconnect
      if (ar !== undefined && ar !== null && typeof ar !== 'boolean') fail("Expected 'allowReconnect' to be of type Boolean.")
      return { type, error, allowReconnect: ar === true }
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type, sequenceId: requireSequenceId(o) }
    default:
      return undefined
  }
}

/** The JSON object for a message, keys in the .NET writer's order. */
export function toJsonObject (m: HubMessage): Json {
  switch (m.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const o: Json = { type: m.type }
      if (m.headers !== undefined && Object.keys(m.headers).length > 0) o.headers = m.headers
      if (m.invocationId !== undefined && m.invocationId !== '') o.invocationId = m.invocationId
      o.target = m.target
      o.arguments = m.arguments
      if (m.streamIds !== undefined && m.streamIds.length > 0) o.streamIds = m.streamIds
      return o
    }
    case MessageType.StreamItem: {
      const o: Json = { type: m.type }
      if (m.headers !== undefined && Object.keys(m.headers).length > 0) o.headers = m.headers
      o.invocationId = m.invocationId
      o.item = m.item === undefined ? null : m.item
      return o
    }
    case MessageType.Completion: {
      const o: Json = { type: m.type }
      if (m.headers !== undefined && Object.keys(m.headers).length > 0) o.headers = m.headers
      o.invocationId = m.invocationId
      if (m.error !== undefined) o.error = m.error
      else if (m.hasResult === true) o.result = m.result === undefined ? null : m.result
      return o
    }
    case MessageType.CancelInvocation: {
      const o: Json = { type: m.type }
      if (m.headers !== undefined && Object.keys(m.headers).length > 0) o.headers = m.headers
      o.invocationId = m.invocationId
      return o
    }
    case MessageType.Ping:
      return { type: m.type }
    case MessageType.Close: {
      const o: Json = { type: m.type }
      if (m.error !== undefined) o.error = m.error
      if (m.allowReconnect === true) o.allowReconnect = true
      return o
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type: m.type, sequenceId: m.sequenceId }
  }
}

/** Deepest nesting of arrays and objects in one message: System.Text.Json's default, which ASP.NET Core's reader enforces. */
export const MAX_JSON_DEPTH = 64

/** How many times `char` occurs in `text`, counted with native searches up to `limit` at most. */
function occurrences (text: string, char: string, limit: number): number {
  let n = 0
  for (let at = text.indexOf(char); at !== -1 && n < limit; at = text.indexOf(char, at + 1)) n++
  return n
}

/** Whether `text` nests arrays and objects deeper than `max`, in one pass and no allocation. */
export function nestedDeeperThan (text: string, max: number): boolean {
  // Each level takes at least two characters
  if (text.length <= max * 2) return false
  // Nor can it nest deeper than it has brackets: most messages have a handful, and native
  // searches find them far faster than the character loop below
  if (occurrences(text, '[', max + 1) + occurrences(text, '{', max + 1) <= max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

const PING_TEXT = '{"type":6}'
// Shared: nothing downstream writes to a Ping
const PING: HubMessage = Object.freeze({ type: MessageType.Ping })

let sawForbiddenKey = false

/**
 * A `__proto__` key is dropped and the message flagged, so that its sender gets an error
 * answer and nothing with the key goes further: relayed to a MessagePack client it would
 * make that client drop its connection, and in application code it invites prototype
 * pollution.
 */
function dropForbiddenKey (key: string, value: unknown): unknown {
  if (key !== FORBIDDEN_KEY) return value
  sawForbiddenKey = true
  return undefined
}

/** A Uint8Array (a Buffer too) goes as base64, as a .NET byte[] does in JSON. */
function bytesAsBase64 (this: Record<string, unknown>, key: string, value: unknown): unknown {
  // `value` has been through toJSON already (a Buffer's is { type, data }): look at the original
  const raw = this[key]
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value
}

/** Whether a value holds a Uint8Array; past MAX_JSON_DEPTH it says yes and lets the replacer look. */
function holdsBytes (value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (value instanceof Uint8Array) return true
  if (depth === 0) return true
  // Primitives are skipped without a call: most arguments are strings and numbers
  const children = Array.isArray(value) ? value : Object.values(value)
  for (let i = 0; i < children.length; i++) {
    const v: unknown = children[i]
    if (typeof v === 'object' && v !== null && holdsBytes(v, depth - 1)) return true
  }
  return false
}

function carriesBytes (m: HubMessage): boolean {
  switch (m.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return holdsBytes(m.arguments, MAX_JSON_DEPTH)
    case MessageType.StreamItem:
      return holdsBytes(m.item, MAX_JSON_DEPTH)
    case MessageType.Completion:
      return holdsBytes(m.result, MAX_JSON_DEPTH)
    default:
      return false
  }
}

/**
 * The text of the Completions nearly every call gets (no headers; an error, nothing, or a
 * primitive result), spelled as toJsonObject and JSON.stringify spell them, without building
 * the object: stringifying two values costs about half of stringifying the object around them.
 * Undefined for anything else, which takes the general path.
 */
function completionText (m: CompletionMessage): string | undefined {
  const id = JSON.stringify(m.invocationId)
  if (m.error !== undefined) return `{"type":3,"invocationId":${id},"error":${JSON.stringify(m.error)}}`
  if (m.hasResult !== true) return `{"type":3,"invocationId":${id}}`
  const r = m.result
  // JSON.stringify spells these the same alone as inside an object (NaN and Infinity as null)
  if (r === undefined || r === null) return `{"type":3,"invocationId":${id},"result":null}`
  if (typeof r === 'string' || typeof r === 'number' || typeof r === 'boolean') return `{"type":3,"invocationId":${id},"result":${JSON.stringify(r)}}`
  return undefined
}

export class JsonHubProtocol implements HubProtocol {
  readonly name = 'json'
  readonly version = 2
  readonly transferFormat = 'Text' as const

  parse (data: Buffer, maxMessageSize: number, maxMessages?: number): ParseResult {
    const messages: HubMessage[] = []
    let read = 0
    const consumed = readRecords(data, maxMessageSize, (text) => {
      read++
      // Pings are most of what clients send, always in this spelling
      if (text === PING_TEXT) {
        messages.push(PING)
        return
      }
      if (nestedDeeperThan(text, MAX_JSON_DEPTH)) fail(`The maximum configured depth of ${MAX_JSON_DEPTH} has been exceeded.`)
      let value: unknown
      sawForbiddenKey = false
      try {
        // The reviver costs time, so it runs only when the key could be there (plain or escaped)
        value = text.includes(FORBIDDEN_KEY) || text.includes('\\u') ? JSON.parse(text, dropForbiddenKey) : JSON.parse(text)
      } catch {
        fail('Error reading JSON.')
      }
      const message = toHubMessage(value)
      if (message === undefined) return
      if (sawForbiddenKey) markForbiddenKey(message)
      messages.push(message)
    }, maxMessages)
    return { messages, consumed, read }
  }

  write (message: HubMessage): Buffer {
    if (message.type === MessageType.Completion && (message.headers === undefined || Object.keys(message.headers).length === 0)) {
      const text = completionText(message)
      if (text !== undefined) return frameText(text)
    }
    const o = toJsonObject(message)
    // The replacer doubles what stringify costs, so only messages that carry bytes get it
    return frameText(carriesBytes(message) ? JSON.stringify(o, bytesAsBase64) : JSON.stringify(o))
  }
}

export const jsonHubProtocol = new JsonHubProtocol()
