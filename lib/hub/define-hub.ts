// defineHub(): checks a hub definition once, compiles every argument schema, and builds the
// case-insensitive method table the dispatcher uses (ASP.NET Core looks hub methods up with
// OrdinalIgnoreCase).
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidHubError } from '../errors.js'
import type {
  HubDefinition, HubDefinitionInput, HubMethods, InvocationContext, MethodAuthorizer, MethodDefinition
} from '../../types/index.js'

export interface Validator {
  Check (value: unknown): boolean
  Errors (value: unknown): Array<{ instancePath: string, message: string }>
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

export interface CompiledHub {
  readonly definition: HubDefinition
  /** Keyed by the lower-cased method name. */
  readonly methods: ReadonlyMap<string, CompiledMethod>
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
    args: def.args.map((s) => Compile(s) as Validator),
    uploads: (def.uploads ?? []).map((s) => Compile(s) as Validator),
    streaming: def.stream !== undefined,
    authorize: def.authorize,
    handler: def.handler as unknown as CompiledMethod['handler']
  }
}

/**
 * Declares a hub. Each handler's parameters are inferred from the method's `args` (and
 * `uploads`) schemas, so a handler that mistypes an argument does not compile.
 */
export function defineHub<
  const A extends Record<string, readonly TSchema[]>,
  R,
  S,
  const U
> (definition: HubDefinitionInput<HubMethods<A, R, S, U>>): HubDefinition {
  return compileHub(definition as unknown as HubDefinition).definition
}

export function compileHub (definition: HubDefinition): CompiledHub {
  const existing = compiled.get(definition)
  if (existing !== undefined) return existing
  if (typeof definition !== 'object' || definition === null) throw new InvalidHubError('a hub must be an object made by defineHub()')
  const { methods, onConnected, onDisconnected } = definition
  if (typeof methods !== 'object' || methods === null) throw new InvalidHubError('methods must be an object')
  if (onConnected !== undefined && typeof onConnected !== 'function') throw new InvalidHubError('onConnected must be a function')
  if (onDisconnected !== undefined && typeof onDisconnected !== 'function') throw new InvalidHubError('onDisconnected must be a function')
  const table = new Map<string, CompiledMethod>()
  for (const [name, def] of Object.entries(methods)) {
    if (name.length === 0) throw new InvalidHubError('a method name must not be empty')
    const key = name.toLowerCase()
    if (table.has(key)) throw new InvalidHubError(`methods '${table.get(key)?.name ?? ''}' and '${name}' differ only in case; SignalR looks methods up case-insensitively`)
    table.set(key, compileMethod(name, def))
  }
  const hub: CompiledHub = { definition, methods: table }
  compiled.set(definition, hub)
  return hub
}
