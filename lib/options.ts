// Plugin and per-hub options: one TypeBox schema, checked once at register time (or at
// app.hub() for per-hub overrides), with ASP.NET Core's defaults (anchors.md §1.2).
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidOptionError } from './errors.js'

const Milliseconds = (description: string) => Type.Integer({ minimum: 1, maximum: 2_147_483_647, description })
const Bytes = (description: string) => Type.Integer({ minimum: 0, description })

/** Options that may be set for the whole plugin and overridden per hub. */
export const HubOptionsSchema = Type.Object({
  keepAliveInterval: Type.Optional(Milliseconds('Ping interval in ms')),
  clientTimeoutInterval: Type.Optional(Milliseconds('Close a client that sent nothing for this long, in ms')),
  handshakeTimeout: Type.Optional(Milliseconds('Time allowed for the handshake, in ms')),
  maximumReceiveMessageSize: Type.Optional(Bytes('Largest hub message accepted, in bytes; 0 means no limit')),
  maximumParallelInvocationsPerClient: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
  streamBufferCapacity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  enableDetailedErrors: Type.Optional(Type.Boolean()),
  transports: Type.Optional(Type.Array(Type.Union([Type.Literal('WebSockets'), Type.Literal('ServerSentEvents'), Type.Literal('LongPolling')]), { minItems: 1, uniqueItems: true })),
  protocols: Type.Optional(Type.Array(Type.Union([Type.Literal('json'), Type.Literal('messagepack')]), { minItems: 1, uniqueItems: true })),
  longPollTimeout: Type.Optional(Milliseconds('How long a poll is held open, in ms')),
  disconnectTimeout: Type.Optional(Milliseconds('How long an inactive connection is kept, in ms')),
  transportSendTimeout: Type.Optional(Milliseconds('A client that does not read for this long is closed, in ms')),
  transportMaxBufferSize: Type.Optional(Type.Integer({ minimum: 1024, description: 'Outbound bytes buffered per connection before sends count as stalled' })),
  allowStatefulReconnects: Type.Optional(Type.Boolean()),
  statefulReconnectBufferSize: Type.Optional(Type.Integer({ minimum: 1 })),
  clientResultTimeout: Type.Optional(Milliseconds('How long a client result may take, in ms')),
  allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  validateClientArguments: Type.Optional(Type.Boolean({ description: 'Check what the server sends to clients against the hub\'s client schemas (for development)' })),
  minimumNegotiateVersion: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: 'Refuse negotiate versions below this (1 refuses v0, whose public id is also its secret; above 1, every client of today)' }))
}, { additionalProperties: false })

export type HubOptionsInput = Static<typeof HubOptionsSchema>

export const PluginOptionsSchema = Type.Object({
  ...HubOptionsSchema.properties
}, { additionalProperties: false })

export type PluginOptionsInput = Static<typeof PluginOptionsSchema>

const h = HubOptionsSchema.properties
/**
 * The options of a raw connection handler (app.signalrConnection): the transports' own.
 * Pings, timeouts of the client and the handshake, invocations, streams, protocols and
 * stateful reconnect are the hub layer's, as in ASP.NET Core, and are refused here.
 */
export const RawOptionsSchema = Type.Object({
  maximumReceiveMessageSize: h.maximumReceiveMessageSize,
  transports: h.transports,
  longPollTimeout: h.longPollTimeout,
  disconnectTimeout: h.disconnectTimeout,
  transportSendTimeout: h.transportSendTimeout,
  transportMaxBufferSize: h.transportMaxBufferSize,
  allowedOrigins: h.allowedOrigins,
  minimumNegotiateVersion: h.minimumNegotiateVersion
}, { additionalProperties: false })

export type RawOptionsInput = Static<typeof RawOptionsSchema>

export interface ResolvedHubOptions {
  keepAliveInterval: number
  clientTimeoutInterval: number
  handshakeTimeout: number
  maximumReceiveMessageSize: number
  maximumParallelInvocationsPerClient: number
  streamBufferCapacity: number
  enableDetailedErrors: boolean
  transports: Array<'WebSockets' | 'ServerSentEvents' | 'LongPolling'>
  protocols: Array<'json' | 'messagepack'>
  longPollTimeout: number
  disconnectTimeout: number
  transportSendTimeout: number
  transportMaxBufferSize: number
  allowStatefulReconnects: boolean
  statefulReconnectBufferSize: number
  clientResultTimeout: number
  allowedOrigins: string[] | undefined
  validateClientArguments: boolean
  minimumNegotiateVersion: number
}

export const DEFAULTS: ResolvedHubOptions = Object.freeze({
  keepAliveInterval: 15_000,
  clientTimeoutInterval: 30_000,
  handshakeTimeout: 15_000,
  maximumReceiveMessageSize: 32_768,
  maximumParallelInvocationsPerClient: 1,
  streamBufferCapacity: 10,
  enableDetailedErrors: false,
  transports: ['WebSockets', 'ServerSentEvents', 'LongPolling'],
  protocols: ['json', 'messagepack'],
  longPollTimeout: 90_000,
  disconnectTimeout: 15_000,
  transportSendTimeout: 10_000,
  // ASP.NET Core's TransportMaxBufferSize (64 KiB) is a pipe threshold, not a cap; we let a
  // connection buffer four times that before we call it stalled, so bursts pass untouched
  transportMaxBufferSize: 262_144,
  allowStatefulReconnects: false,
  statefulReconnectBufferSize: 100_000,
  // ASP.NET Core waits forever unless the caller passes a token; a default keeps a vanished
  // client from pinning a pending call (and its slot) for good
  clientResultTimeout: 30_000,
  allowedOrigins: undefined,
  validateClientArguments: false,
  minimumNegotiateVersion: 0
}) as ResolvedHubOptions

const checkPlugin = Compile(PluginOptionsSchema)
const checkHub = Compile(HubOptionsSchema)
const checkRaw = Compile(RawOptionsSchema)
type Checker = typeof checkPlugin | typeof checkHub | typeof checkRaw

export function firstError (errors: Array<{ instancePath: string, message: string, params: unknown }>): [string, string] {
  // additionalProperties errors name the key in params rather than in the path
  for (const e of errors) {
    const extra = (e.params as { additionalProperties?: string[] }).additionalProperties
    if (extra !== undefined && extra.length > 0) return [`'${extra[0]}'`, 'is not a known option']
  }
  const e = errors.find((x) => x.instancePath !== '') ?? errors[0]
  const name = e.instancePath.replace(/^\//, '').replace(/\//g, '.')
  return [name === '' ? '(options)' : `'${name}'`, e.message]
}

function validate (value: unknown, check: Checker): void {
  if (!check.Check(value)) throw new InvalidOptionError(...firstError(check.Errors(value)))
}

export function resolvePluginOptions (input: unknown): ResolvedHubOptions {
  const options = input ?? {}
  validate(options, checkPlugin)
  return merge(DEFAULTS, options as PluginOptionsInput)
}

export function resolveHubOptions (base: ResolvedHubOptions, input: unknown): ResolvedHubOptions {
  const options = input ?? {}
  validate(options, checkHub)
  return merge(base, options as HubOptionsInput)
}

/** A raw connection handler's options over the plugin's; stateful reconnect is a hub protocol feature, never offered. */
export function resolveRawOptions (base: ResolvedHubOptions, input: unknown): ResolvedHubOptions {
  const options = input ?? {}
  validate(options, checkRaw)
  return { ...merge(base, options as RawOptionsInput), allowStatefulReconnects: false }
}

function merge (base: ResolvedHubOptions, input: HubOptionsInput): ResolvedHubOptions {
  const out = { ...base }
  for (const [k, v] of Object.entries(input)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = Array.isArray(v) ? [...v] : v
  }
  return out
}
