// defineHub(): checks a hub definition once, compiles every argument schema, and builds the
// case-insensitive method table the dispatcher uses (ASP.NET Core looks hub methods up with
// OrdinalIgnoreCase).
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidHubError } from '../errors.js'
import { wireValidator } from './wire-types.js'
import type {
  ClientMethodDefinition, ClientMethodDefinitions, ClientTypesOf, HubDefinition, HubDefinitionInput, HubMethods,
  InvocationContext, MethodAuthorizer, MethodDefinition, ServerTypesOf
} from '../../types/index.js'

export interface Validator {
  Check (value: unknown): boolean
  Errors (value: unknown): Array<{ instancePath: string, message: string }>
  /** Turns a checked value into what the handler gets (Bytes(): a Uint8Array, DateTime(): a Date). */
  fromWire? (value: unknown): unknown
}

/** Bytes() and DateTime() get validators of both wire forms; every other schema, TypeBox's. */
function compileSchema (schema: TSchema): Validator {
  return wireValidator(schema) ?? Compile(schema) as Validator
}

export interface CompiledMethod {
  /** The name as the application wrote it. */
  readonly name: string
  readonly args: readonly Validator[]
  readonly uploads: readonly Validator[]
  readonly streaming: boolean
  readonly authorize: MethodAuthorizer | undefined
  readonly handler: (ctx: InvocationContext, ...args: unknown[]) => unknown
}

/** A method the hub declared in `client`: what the server may call on its clients. */
export interface CompiledClientMethod {
  readonly name: string
  readonly args: readonly Validator[]
  readonly returns: Validator | undefined
}

export interface CompiledHub {
  readonly definition: HubDefinition
  /** Keyed by the lower-cased method name. */
  readonly methods: ReadonlyMap<string, CompiledMethod>
  /** Keyed by the lower-cased name (the JS client matches them so); undefined when the hub declares no `client`. */
  readonly client: ReadonlyMap<string, CompiledClientMethod> | undefined
}

const compiled = new WeakMap<HubDefinition, CompiledHub>()

function isSchema (value: unknown): value is TSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function compileMethod (name: string, def: MethodDefinition): CompiledMethod {
  if (typeof def !== 'object' || def === null) throw new InvalidHubError(`method '${name}' must be an object`)
  if (typeof def.handler !== 'function') throw new InvalidHubError(`method '${name}' needs a handler function`)
  if (!Array.isArray(def.args) || !def.args.every(isSchema)) throw new InvalidHubError(`method '${name}': args must be an array of TypeBox schemas`)
  if (def.uploads !== undefined && (!Array.isArray(def.uploads) || !def.uploads.every(isSchema))) {
    throw new InvalidHubError(`method '${name}': uploads must be an array of TypeBox schemas`)
  }
  if (def.stream !== undefined && !isSchema(def.stream)) throw new InvalidHubError(`method '${name}': stream must be a TypeBox schema`)
  if (def.returns !== undefined && !isSchema(def.returns)) throw new InvalidHubError(`method '${name}': returns must be a TypeBox schema`)
  if (def.authorize !== undefined && typeof def.authorize !== 'function') throw new InvalidHubError(`method '${name}': authorize must be a function`)
  return {
    name,
    args: def.args.map(compileSchema),
    uploads: (def.uploads ?? []).map(compileSchema),
    streaming: def.stream !== undefined,
    authorize: def.authorize,
    handler: def.handler as unknown as CompiledMethod['handler']
  }
}

function compileClientMethod (name: string, def: ClientMethodDefinition): CompiledClientMethod {
  if (typeof def !== 'object' || def === null) throw new InvalidHubError(`client method '${name}' must be an object`)
  if (!Array.isArray(def.args) || !def.args.every(isSchema)) throw new InvalidHubError(`client method '${name}': args must be an array of TypeBox schemas`)
  if (def.returns !== undefined && !isSchema(def.returns)) throw new InvalidHubError(`client method '${name}': returns must be a TypeBox schema`)
  return {
    name,
    args: def.args.map(compileSchema),
    returns: def.returns === undefined ? undefined : compileSchema(def.returns)
  }
}

/** A table keyed by lower-cased name, refusing names that differ only in case. */
function table<D, C> (what: string, defs: Record<string, D>, compile: (name: string, def: D) => C & { name: string }): Map<string, C & { name: string }> {
  const out = new Map<string, C & { name: string }>()
  for (const [name, def] of Object.entries(defs)) {
    if (name.length === 0) throw new InvalidHubError(`a ${what} name must not be empty`)
    const key = name.toLowerCase()
    if (out.has(key)) throw new InvalidHubError(`${what}s '${out.get(key)?.name ?? ''}' and '${name}' differ only in case; SignalR looks methods up case-insensitively`)
    out.set(key, compile(name, def))
  }
  return out
}

/**
 * Declares a hub. Each handler's parameters are inferred from the method's `args` (and
 * `uploads`) schemas, so a handler that mistypes an argument does not compile. With
 * `client`, every send() and invoke() of the hub's proxies is typed by those schemas too,
 * and the returned definition carries both halves of the contract for fastify-signalr/client.
 */
export function defineHub<
  const A extends Record<string, readonly TSchema[]>,
  R,
  S,
  const U,
  const C extends ClientMethodDefinitions | undefined = undefined
> (definition: HubDefinitionInput<HubMethods<A, R, S, U, ClientTypesOf<C>>, C>): HubDefinition<{ server: ServerTypesOf<A, R, S, U>, client: ClientTypesOf<C> }> {
  return compileHub(definition as unknown as HubDefinition).definition as HubDefinition<{ server: ServerTypesOf<A, R, S, U>, client: ClientTypesOf<C> }>
}

export function compileHub (definition: HubDefinition): CompiledHub {
  const existing = compiled.get(definition)
  if (existing !== undefined) return existing
  if (typeof definition !== 'object' || definition === null) throw new InvalidHubError('a hub must be an object made by defineHub()')
  const { methods, client, onConnected, onDisconnected } = definition
  if (typeof methods !== 'object' || methods === null) throw new InvalidHubError('methods must be an object')
  if (client !== undefined && (typeof client !== 'object' || client === null)) throw new InvalidHubError('client must be an object')
  if (onConnected !== undefined && typeof onConnected !== 'function') throw new InvalidHubError('onConnected must be a function')
  if (onDisconnected !== undefined && typeof onDisconnected !== 'function') throw new InvalidHubError('onDisconnected must be a function')
  const hub: CompiledHub = {
    definition,
    methods: table('method', methods, compileMethod),
    client: client === undefined ? undefined : table('client method', client, compileClientMethod)
  }
  compiled.set(definition, hub)
  return hub
}
