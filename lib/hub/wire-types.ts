// Bytes() and DateTime(): schemas for the two values .NET clients send in a different shape
// per protocol. A .NET byte[] is a base64 string in JSON and bin in MessagePack; a DateTime is
// an ISO 8601 string in JSON and a timestamp in MessagePack. TypeBox 1.x has neither type, so
// these are Unsafe schemas (JSON Schema's view of the JSON form, for AsyncAPI) carrying a
// marker that makes defineHub() compile them into validators of both forms, which also hand
// the handler one type: a Uint8Array, a Date.
import Type, { type TSchema, type TUnsafe } from 'typebox'
import type { Validator } from './define-hub.js'

const kWireType = Symbol.for('fastify-signalr.wire-type')

type WireKind = 'bytes' | 'datetime'

interface Marked { [kWireType]?: { kind: WireKind, maxBytes?: number } }

export interface BytesOptions {
  /** The most bytes accepted once decoded. */
  maxBytes?: number
  description?: string
}

/** A .NET byte[]: base64 in JSON, bin in MessagePack. The handler gets a Uint8Array. */
export function Bytes (options: BytesOptions = {}): TUnsafe<Uint8Array> {
  const schema = Type.Unsafe<Uint8Array>({ type: 'string', contentEncoding: 'base64', ...(options.description === undefined ? {} : { description: options.description }) })
  Object.defineProperty(schema, kWireType, { value: { kind: 'bytes', maxBytes: options.maxBytes } })
  return schema
}

/** A .NET DateTime: ISO 8601 in JSON, a timestamp in MessagePack. The handler gets a Date. */
export function DateTime (options: { description?: string } = {}): TUnsafe<Date> {
  const schema = Type.Unsafe<Date>({ type: 'string', format: 'date-time', ...options })
  Object.defineProperty(schema, kWireType, { value: { kind: 'datetime' } })
  return schema
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
// What System.Text.Json writes for a DateTime (up to 7 fractional digits) and DateTimeOffset
const ISO_8601 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/

function problem (message: string): Array<{ instancePath: string, message: string }> {
  return [{ instancePath: '', message }]
}

/** ms since the epoch, or NaN. No offset means UTC: a .NET Unspecified or Utc kind, never the server's zone. */
function parseIso (text: string): number {
  const m = ISO_8601.exec(text)
  if (m === null) return Number.NaN
  // Date.parse takes at most milliseconds; .NET writes ticks (7 digits)
  const fraction = m[2] === undefined ? '' : `.${m[2].slice(0, 3)}`
  return Date.parse(`${m[1]}${fraction}${m[3] ?? 'Z'}`)
}

class BytesValidator implements Validator {
  constructor (private readonly maxBytes: number | undefined) {}

  private why (value: unknown): string | undefined {
    let length: number
    if (value instanceof Uint8Array) length = value.byteLength
    else if (typeof value === 'string' && value.length % 4 === 0 && BASE64.test(value)) length = (value.length / 4) * 3 - (value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0)
    else return 'must be bytes (base64 in JSON, bin in MessagePack)'
    if (this.maxBytes !== undefined && length > this.maxBytes) return `must not have more than ${this.maxBytes} bytes`
    return undefined
  }

  Check (value: unknown): boolean { return this.why(value) === undefined }
  Errors (value: unknown): Array<{ instancePath: string, message: string }> { return problem(this.why(value) ?? '') }
  fromWire (value: unknown): unknown { return typeof value === 'string' ? Buffer.from(value, 'base64') : value }
}

class DateTimeValidator implements Validator {
  Check (value: unknown): boolean {
    if (value instanceof Date) return !Number.isNaN(value.getTime())
    return typeof value === 'string' && !Number.isNaN(parseIso(value))
  }

  Errors (): Array<{ instancePath: string, message: string }> { return problem('must be a date (ISO 8601 in JSON, a timestamp in MessagePack)') }
  fromWire (value: unknown): unknown { return typeof value === 'string' ? new Date(parseIso(value)) : value }
}

/** The validator of a Bytes() or DateTime() schema, or undefined for any other schema. */
export function wireValidator (schema: TSchema): Validator | undefined {
  const mark = (schema as Marked)[kWireType]
  if (mark === undefined) return undefined
  return mark.kind === 'bytes' ? new BytesValidator(mark.maxBytes) : new DateTimeValidator()
}
