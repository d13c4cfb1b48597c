// Fastify glue only: option validation, @fastify/websocket, the app.hub and app.signalr
// decorators, and shutdown. Everything else lives in lib/.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import { DuplicateHubError, InvalidOptionError } from './lib/errors.js'
import { compileHub } from './lib/hub/define-hub.js'
import { MappedHub } from './lib/hub/mapped-hub.js'
import type { Backplane, HubLifetimeManager } from './lib/lifetime/hub-lifetime-manager.js'
import { MemoryHubLifetimeManager } from './lib/lifetime/memory.js'
import { checkName } from './lib/names.js'
import { resolveHubOptions, resolvePluginOptions, type PluginOptionsInput } from './lib/options.js'
import { normalizePath, Registry } from './lib/registry.js'
import { protocolsByName } from './lib/protocol/index.js'
import { mapHubRoutes } from './lib/transports/routes.js'
import type { HubDefinition, HubRouteOptions } from './types/index.js'

export type FastifySignalROptions = PluginOptionsInput & {
  /** Scale-out for every hub (a hub's own `backplane` replaces it): see fastify-signalr/redis. */
  backplane?: Backplane
}

function checkBackplane (value: unknown): Backplane | undefined {
  if (value === undefined) return undefined
  if (typeof (value as Backplane | null)?.createLifetimeManager !== 'function') {
    throw new InvalidOptionError("'backplane'", 'must be a backplane, such as redisBackplane({ client }) from fastify-signalr/redis')
  }
  return value as Backplane
}

// Keys Fastify itself reads from register() options; they are not ours to validate
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/** The largest WebSocket message for a hub message limit (0: none); one message may hold several hub messages. */
function maxPayloadFor (maximumReceiveMessageSize: number): number {
  return maximumReceiveMessageSize === 0 ? 0 : Math.max(1_048_576, maximumReceiveMessageSize * 4)
}

const plugin: FastifyPluginAsync<FastifySignalROptions> = async function fastifySignalR (fastify, rawOptions) {
  const ours: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(rawOptions ?? {})) if (!FASTIFY_REGISTER_KEYS.has(k) && k !== 'backplane') ours[k] = v
  const defaultBackplane = checkBackplane(rawOptions?.backplane)
  const defaults = resolvePluginOptions(ours)
  const registry = new Registry(fastify.log)

  if (fastify.hasDecorator('websocketServer')) {
    fastify.log.warn('fastify-signalr: @fastify/websocket was registered before it; its preClose closes sockets before SignalR can send them a Close message')
  } else {
    await fastify.register(websocket, {
      options: {
        perMessageDeflate: false,
        // ws buffers a whole message before we see it: cap it near the hub message limit
        // (several hub messages may share one WebSocket message) so a client cannot make the
        // server hold more than that plus one frame
        maxPayload: maxPayloadFor(defaults.maximumReceiveMessageSize)
      },
      // Our Close messages must go out before the sockets are closed
      preClose: async function () {
        await registry.closeAll()
        const server = fastify.websocketServer
        for (const client of server.clients) client.terminate()
        await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      }
    })
  }

  fastify.decorate('signalr', registry)
  fastify.decorate('hub', function hub (this: FastifyInstance, path: string, definition: HubDefinition, routeOptions: HubRouteOptions = {}) {
    checkName('hub path', path)
    if (registry.hasHub(path)) throw new DuplicateHubError(path)
    const { onRequest, preParsing, preValidation, preHandler, onResponse, onError, userId, backplane, asyncapi, ...hubOptions } = routeOptions
    const options = resolveHubOptions(defaults, hubOptions)
    // ws reads maxPayload at each upgrade: a hub with a larger limit raises it
    const wss = fastify.websocketServer as { options: { maxPayload: number } } | undefined
    if (wss !== undefined) {
      const needed = maxPayloadFor(options.maximumReceiveMessageSize)
      if (wss.options.maxPayload !== 0 && (needed === 0 || needed > wss.options.maxPayload)) wss.options.maxPayload = needed
    }
    const scaleOut = checkBackplane(backplane) ?? defaultBackplane
    const lifetime: HubLifetimeManager = scaleOut === undefined
      ? new MemoryHubLifetimeManager()
      : scaleOut.createLifetimeManager({ path: normalizePath(path), protocols: protocolsByName(options.protocols), log: this.log, clientResultTimeout: options.clientResultTimeout })
    const mapped = new MappedHub({
      path,
      hub: compileHub(definition),
      options,
      lifetime,
      log: this.log,
      userId: userId ?? undefined,
      forget: (connection) => { registry.forget(connection) },
      asyncapi: typeof asyncapi === 'object' ? asyncapi : undefined
    })
    registry.addHub(mapped)
    mapHubRoutes(this, mapped, registry, { onRequest, preParsing, preValidation, preHandler, onResponse, onError }, asyncapi !== undefined && asyncapi !== false)
    return this
  })

  // Also covers an application that registered @fastify/websocket itself
  fastify.addHook('preClose', async function () {
    await registry.closeAll()
  })
}

export const fastifySignalR = fp(plugin, { fastify: '5.x', name: 'fastify-signalr' })
export default fastifySignalR

export { defineHub } from './lib/hub/define-hub.js'
export { accessToken, redactAccessToken } from './lib/transports/access-token.js'
export { HubError } from './lib/errors.js'
export * as errors from './lib/errors.js'
export type { Backplane, BackplaneHub, HubLifetimeManager, SendTarget, LifetimeConnection } from './lib/lifetime/hub-lifetime-manager.js'
export type * from './types/index.js'
