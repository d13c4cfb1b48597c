// signalrAdmin's options: a TypeBox schema for the values, checked once at register time,
// and the route hooks that guard the page, its assets and its hub.
import type { RouteShorthandOptions } from 'fastify'
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidOptionError } from '../errors.js'
import { firstError } from '../options.js'

const HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const
type HookName = typeof HOOKS[number]

export type AdminHooks = Pick<RouteShorthandOptions, HookName>

const AdminValuesSchema = Type.Object({
  // Plain URL characters only: the path is written into the page's HTML
  path: Type.Optional(Type.String({ minLength: 2, maxLength: 200, pattern: '^(/[A-Za-z0-9._~-]+)+$' })),
  title: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  interval: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000, description: 'How often every open page gets a new snapshot, in ms' })),
  maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Connections listed per hub in each snapshot' })),
  historyLength: Type.Optional(Type.Integer({ minimum: 2, maximum: 3600, description: 'Points of the connection-count chart' }))
}, { additionalProperties: false })

export type SignalRAdminOptions = Static<typeof AdminValuesSchema> & AdminHooks

export interface ResolvedAdminOptions {
  path: string
  title: string
  interval: number
  maxConnections: number
  historyLength: number
  hooks: AdminHooks
}

const checkValues = Compile(AdminValuesSchema)

// Keys Fastify itself reads from register() options
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

function isHook (value: unknown): boolean {
  return typeof value === 'function' || (Array.isArray(value) && value.length > 0 && value.every((f) => typeof f === 'function'))
}

export function resolveAdminOptions (input: unknown): ResolvedAdminOptions {
  if (input !== undefined && (typeof input !== 'object' || input === null)) throw new InvalidOptionError('(signalrAdmin options)', 'must be an object')
  const values: Record<string, unknown> = {}
  const hooks: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(input ?? {})) {
    if (FASTIFY_REGISTER_KEYS.has(k)) continue
    if ((HOOKS as readonly string[]).includes(k)) {
      if (v === undefined) continue
      if (!isHook(v)) throw new InvalidOptionError(`'${k}' of signalrAdmin`, 'must be a hook function or a non-empty array of them')
      hooks[k] = v
    } else {
      values[k] = v
    }
  }
  if (!checkValues.Check(values)) {
    const [name, message] = firstError(checkValues.Errors(values))
    throw new InvalidOptionError(`${name} of signalrAdmin`, message)
  }
  const v = values as Static<typeof AdminValuesSchema>
  return {
    path: v.path ?? '/signalr-admin',
    title: v.title ?? 'SignalR admin',
    interval: v.interval ?? 1000,
    maxConnections: v.maxConnections ?? 200,
    historyLength: v.historyLength ?? 120,
    hooks: hooks as AdminHooks
  }
}
