// Fastify glue only: option validation, WebSocket upgrades, the app.hub, app.signalrConnection
// and app.signalr decorators, and shutdown. Everything else lives in lib/.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { DuplicateHubError, HubAfterStartError, InvalidArgumentError, InvalidOptionError } from './lib/errors.js'
import { compileHub } from './lib/hub/define-hub.js'
import { MappedHub } from './lib/hub/mapped-hub.js'
import type { Backplane, HubLifetimeManager } from './lib/lifetime/hub-lifetime-manager.js'
import { MemoryHubLifetimeManager } from './lib/lifetime/memory.js'
import { checkName, type NameKind } from './lib/names.js'
import { resolveHubOptions, resolvePluginOptions, resolveRawOptions, type PluginOptionsInput } from './lib/options.js'
import { protocolsByName } from './lib/protocol/index.js'
import { RawEndpoint } from './lib/raw/raw-endpoint.js'
import { normalizePath, Registry, SignalRView } from './lib/registry.js'
import { BackplaneTelemetry } from './lib/telemetry/backplane.js'
import { Telemetry, telemetryOptionProblem, type TelemetryOptions } from './lib/telemetry/telemetry.js'
import { mapHubRoutes, splitRouteSettings } from './lib/transports/routes.js'
import { HubPathCase } from './lib/transports/path-case.js'
import { WebSocketUpgrades } from './lib/transports/upgrade.js'
import type { HubDefinition, HubRouteOptions, RawConnectionHandler, RawConnectionRouteOptions } from './types/index.js'

export type FastifySignalROptions = PluginOptionsInput & {
  /** Scale-out for every hub (a hub's own `backplane` replaces it): see fastify-signalr/redis. */
  backplane?: Backplane
  /**
   * Where metrics and spans go: a MeterProvider and a TracerProvider. Without it, the global
   * ones of @opentelemetry/api (no-ops until an SDK registers; metrics are read from the
   * global provider when the plugin is registered, so register the SDK first).
   */
  telemetry?: TelemetryOptions
}

function checkBackplane (value: unknown): Backplane | undefined {
  if (value === undefined) return undefined
  if (typeof (value as Backplane | null)?.createLifetimeManager !== 'function') {
    throw new InvalidOptionError("'backplane'", 'must be a backplane, such as redisBackplane({ client }) from fastify-signalr/redis')
  }
  return value as Backplane
}

function checkRedirect (value: unknown): HubRouteOptions['negotiateRedirect'] {
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw new InvalidOptionError("'negotiateRedirect'", 'must be a function of the negotiate request')
  return value as HubRouteOptions['negotiateRedirect']
}

// Keys Fastify itself reads from register() options; they are not ours to validate
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/** Where a path mapped in `scope` is reached: the scope's prefix, then the path. */
function clientPath (scope: FastifyInstance, path: string): string {
  return normalizePath(scope.prefix === '' || scope.prefix === '/' ? path : scope.prefix + path)
}

const plugin: FastifyPluginAsync<FastifySignalROptions> = async function fastifySignalR (fastify, rawOptions) {
  const ours: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(rawOptions ?? {})) if (!FASTIFY_REGISTER_KEYS.has(k) && k !== 'backplane' && k !== 'telemetry') ours[k] = v
  const defaultBackplane = checkBackplane(rawOptions?.backplane)
  const defaults = resolvePluginOptions(ours)
  const telemetryProblem = telemetryOptionProblem(rawOptions?.telemetry)
  if (telemetryProblem !== undefined) throw new InvalidOptionError("'telemetry'", telemetryProblem)
  const telemetry = new Telemetry(rawOptions?.telemetry)
  const registry = new Registry(fastify.log)
  const view = new SignalRView(registry)
  // Our own upgrades, not @fastify/websocket's: the application may register that plugin for
  // its own WebSocket routes, before or after this one, and its shutdown then never closes
  // a hub's sockets before their Close message went out
  const upgrades = new WebSocketUpgrades(fastify.log, view)
  upgrades.attach(fastify.server, (req, res) => { fastify.routing(req, res) })
  const pathCase = new HubPathCase()
  pathCase.attach(fastify.server)
  let started = false
  fastify.addHook('onReady', async function () { started = true })

  /** Where a hub or raw connection handler mapped at `path` in `scope` is reached, once it may be mapped there. */
  function claimPath (scope: FastifyInstance, kind: NameKind, path: string): string {
    checkName(kind, path)
    const fullPath = clientPath(scope, path)
    // Routes cannot be added once the app has started: refuse before anything is recorded
    if (started) throw new HubAfterStartError(fullPath)
    if (registry.hasPath(fullPath)) throw new DuplicateHubError(fullPath)
    return fullPath
  }

  fastify.decorate('signalr', view)
  fastify.decorate('hub', function hub (this: FastifyInstance, path: string, definition: HubDefinition, routeOptions: HubRouteOptions = {}) {
    const fullPath = claimPath(this, 'hub path', path)
    const { settings, rest: { userId, backplane, asyncapi, negotiateRedirect, ...hubOptions } } = splitRouteSettings(routeOptions)
    const options = resolveHubOptions(defaults, hubOptions)
    const scaleOut = checkBackplane(backplane) ?? defaultBackplane
    // The fleet knows a hub by the path its clients use
    const lifetime: HubLifetimeManager = scaleOut === undefined
      ? new MemoryHubLifetimeManager()
      : scaleOut.createLifetimeManager({
        path: fullPath,
        protocols: protocolsByName(options.protocols),
        log: this.log,
        clientResultTimeout: options.clientResultTimeout,
        observer: new BackplaneTelemetry(telemetry, fullPath, typeof scaleOut.name === 'string' ? scaleOut.name : 'custom'),
        // Asked for by other servers only once this one serves: `mapped` exists by then
        snapshot: async (limit) => await mapped.localSnapshot(limit)
      })
    const mapped = new MappedHub({
      path: fullPath,
      hub: compileHub(definition),
      options,
      lifetime,
      log: this.log,
      userId: userId ?? undefined,
      forget: (connection) => { registry.forget(connection) },
      asyncapi: typeof asyncapi === 'object' ? asyncapi : undefined,
      negotiateRedirect: checkRedirect(negotiateRedirect),
      telemetry
    })
    const serveAsyncApi = asyncapi !== undefined && asyncapi !== false
    mapHubRoutes(this, path, mapped, registry, upgrades, settings, serveAsyncApi
      ? (request) => mapped.hubContext.asyncapi({ host: request.host, secure: request.protocol === 'https' })
      : undefined)
    registry.addHub(mapped)
    pathCase.add(fullPath)
    return this
  })

  fastify.decorate('signalrConnection', function signalrConnection (this: FastifyInstance, path: string, handler: RawConnectionHandler, routeOptions: RawConnectionRouteOptions = {}) {
    const fullPath = claimPath(this, 'connection path', path)
    if (typeof handler !== 'function') throw new InvalidArgumentError('connection handler', 'must be a function of the connection')
    const { settings, rest: { userId, ...rawOptions } } = splitRouteSettings(routeOptions)
    const endpoint = new RawEndpoint({
      path: fullPath,
      handler,
      options: resolveRawOptions(defaults, rawOptions),
      log: this.log,
      userId: userId ?? undefined,
      forget: (connection) => { registry.forget(connection) },
      telemetry
    })
    mapHubRoutes(this, path, endpoint, registry, upgrades, settings)
    registry.addRaw(fullPath, endpoint.options)
    pathCase.add(fullPath)
    return this
  })

  // Before the server stops taking requests: every connection gets its Close message, then
  // what is left of the sockets is cut
  fastify.addHook('preClose', async function () {
    telemetry.shuttingDown = true
    await registry.closeAll()
    await upgrades.close()
    pathCase.detach()
  })
}

export const fastifySignalR = fp(plugin, { fastify: '5.x', name: 'fastify-signalr' })
export default fastifySignalR

export { defineHub } from './lib/hub/define-hub.js'
export { Bytes, DateTime, type BytesOptions } from './lib/hub/wire-types.js'
export { accessToken, redactAccessToken } from './lib/transports/access-token.js'
export { HubError } from './lib/errors.js'
export * as errors from './lib/errors.js'
export type { Backplane, BackplaneHub, HubLifetimeManager, SendTarget, LifetimeConnection } from './lib/lifetime/hub-lifetime-manager.js'
export type * from './types/index.js'
