// fastify-signalr/redis: `redisBackplane({ client })` scales hubs out over Redis, speaking
// Microsoft.AspNetCore.SignalR.StackExchangeRedis's wire format, so Node and ASP.NET Core
// servers can share one fleet. Pass it as `app.register(signalr, { backplane })` or per hub
// in `app.hub(path, hub, { backplane })`. Applications without Redis never load this file.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidOptionError } from '../../errors.js'
import type { Backplane, BackplaneHub, HubLifetimeManager } from '../hub-lifetime-manager.js'
import { RedisHubLifetimeManager } from './manager.js'
import { createSeam, isIoRedis, isNodeRedis, type RedisClientLike, type RedisSeam } from './seam.js'

const Milliseconds = (description: string) => Type.Integer({ minimum: 1, maximum: 2_147_483_647, description })

export const RedisBackplaneOptionsSchema = Type.Object({
  hubName: Type.Optional(Type.Union([
    Type.String({ minLength: 1, maxLength: 1024, description: 'The channel prefix of the hub: for a hub shared with ASP.NET Core, the .NET hub\'s full type name' }),
    Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: 1024 }), { description: 'Hub path -> hub name, for a backplane given at register level' })
  ])),
  channelPrefix: Type.Optional(Type.String({ maxLength: 1024, description: 'StackExchange.Redis ChannelPrefix: put in front of every channel as it is' })),
  serverName: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^\\S+$', description: 'This server\'s name in the fleet (no whitespace)' })),
  ackTimeout: Type.Optional(Milliseconds('How long a group change for a connection on another server waits for its ack')),
  heartbeatInterval: Type.Optional(Milliseconds('How often this server refreshes its presence; a dead server\'s share expires after 3 of these')),
  commandTimeout: Type.Optional(Milliseconds('How long a publish or command may wait for Redis before it fails')),
  forwarding: Type.Optional(Type.Boolean({ description: 'Forward transport requests to the server that owns the connection, so that no load balancer needs sticky sessions (Redis 6.2 or later)' })),
  forwardingProbeInterval: Type.Optional(Milliseconds('How often a long poll held for another server checks that the owner is still there'))
}, { additionalProperties: false })

export type RedisBackplaneSettings = Static<typeof RedisBackplaneOptionsSchema>

export interface RedisBackplaneOptions extends RedisBackplaneSettings {
  /**
   * The application's own connected client: node-redis (`createClient()`, v5 or v6, after
   * `await client.connect()`) or ioredis (`new Redis()`, v5 or v6). The backplane makes its
   * subscriber with `client.duplicate()`, and never closes the client itself.
   */
  client: unknown
}

export const REDIS_DEFAULTS = Object.freeze({
  ackTimeout: 30_000,
  heartbeatInterval: 5_000,
  commandTimeout: 5_000,
  channelPrefix: '',
  forwardingProbeInterval: 2_000
})

const check = Compile(RedisBackplaneOptionsSchema)

function validate (settings: unknown): asserts settings is RedisBackplaneSettings {
  if (check.Check(settings)) return
  const errors = check.Errors(settings)
  for (const e of errors) {
    const extra = (e.params as { additionalProperties?: string[] }).additionalProperties
    if (extra !== undefined && extra.length > 0) throw new InvalidOptionError(`'${extra[0]}'`, 'is not a known option of redisBackplane()')
  }
  const e = errors.find((x) => x.instancePath !== '') ?? errors[0]
  throw new InvalidOptionError(`'${e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(options)'}'`, e.message)
}

/** `{hostname}_{32 hex}`, as ASP.NET Core names its servers. */
export function defaultServerName (): string {
  return `${hostname()}_${randomBytes(16).toString('hex')}`
}

export class RedisBackplane implements Backplane {
  readonly name = 'redis'
  readonly serverName: string
  private readonly settings: Required<Omit<RedisBackplaneSettings, 'hubName' | 'serverName' | 'forwarding'>>
  readonly forwarding: boolean
  private seamInstance: RedisSeam | undefined
  private starting: Promise<void> | undefined
  private readonly managers = new Set<RedisHubLifetimeManager>()
  private readonly namesInUse = new Set<string>()
  private heartbeat: NodeJS.Timeout | undefined
  private log: FastifyBaseLogger | undefined

  constructor (private readonly client: RedisClientLike, private readonly hubName: RedisBackplaneSettings['hubName'], settings: RedisBackplaneSettings) {
    this.serverName = settings.serverName ?? defaultServerName()
    this.settings = {
      ackTimeout: settings.ackTimeout ?? REDIS_DEFAULTS.ackTimeout,
      heartbeatInterval: settings.heartbeatInterval ?? REDIS_DEFAULTS.heartbeatInterval,
      commandTimeout: settings.commandTimeout ?? REDIS_DEFAULTS.commandTimeout,
      channelPrefix: settings.channelPrefix ?? REDIS_DEFAULTS.channelPrefix,
      forwardingProbeInterval: settings.forwardingProbeInterval ?? REDIS_DEFAULTS.forwardingProbeInterval
    }
    this.forwarding = settings.forwarding === true
  }

  /** A dead server's presence drops out of answers this long after its last heartbeat. */
  get presenceExpiryMs (): number {
    return this.settings.heartbeatInterval * 3
  }

  private nameFor (path: string): string {
    const name = typeof this.hubName === 'string' ? this.hubName : this.hubName?.[path] ?? path
    if (this.namesInUse.has(name)) {
      throw new InvalidOptionError("'backplane'", `two hubs would share the Redis hub name '${name}': give each its own (hubName: { '${path}': '...' }, or one redisBackplane() per hub)`)
    }
    return name
  }

  private seam (log: FastifyBaseLogger): RedisSeam {
    if (this.seamInstance !== undefined) return this.seamInstance
    this.log = log
    const seam = createSeam(this.client, this.settings.commandTimeout)
    seam.on('down', (why) => {
      log.warn({ why, serverName: this.serverName }, 'signalr: lost the Redis backplane; sends fail with FST_SIGNALR_BACKPLANE_UNAVAILABLE until it is back')
    })
    seam.on('up', (why) => {
      log.warn({ why, serverName: this.serverName }, 'signalr: the Redis backplane is back')
      for (const m of this.managers) m.recovered().catch((err: unknown) => { log.warn({ err }, 'signalr: presence could not be rewritten after Redis came back; the next heartbeat tries again') })
    })
    this.seamInstance = seam
    return seam
  }

  private async started (): Promise<void> {
    const seam = this.seamInstance as RedisSeam
    this.starting ??= seam.start().catch((err: unknown) => {
      this.starting = undefined
      throw err
    })
    await this.starting
  }

  createLifetimeManager (hub: BackplaneHub): HubLifetimeManager {
    const hubName = this.nameFor(hub.path)
    const seam = this.seam(hub.log)
    const manager = new RedisHubLifetimeManager(seam, async () => { await this.started() }, hub, {
      hubName,
      channelPrefix: this.settings.channelPrefix,
      serverName: this.serverName,
      ackTimeout: this.settings.ackTimeout,
      heartbeatInterval: this.settings.heartbeatInterval,
      commandTimeout: this.settings.commandTimeout,
      forwarding: this.forwarding ? { probeInterval: this.settings.forwardingProbeInterval } : undefined
    }, (m) => { void this.release(m, hubName) })
    this.namesInUse.add(hubName)
    this.managers.add(manager)
    this.startHeartbeat()
    return manager
  }

  private startHeartbeat (): void {
    if (this.heartbeat !== undefined) return
    this.heartbeat = setInterval(() => {
      for (const m of this.managers) {
        m.heartbeat().catch((err: unknown) => { this.log?.debug({ err }, 'signalr: a presence heartbeat did not reach Redis') })
      }
    }, this.settings.heartbeatInterval)
    this.heartbeat.unref()
  }

  private async release (manager: RedisHubLifetimeManager, hubName: string): Promise<void> {
    this.managers.delete(manager)
    this.namesInUse.delete(hubName)
    if (this.managers.size > 0) return
    clearInterval(this.heartbeat)
    this.heartbeat = undefined
    const seam = this.seamInstance
    this.seamInstance = undefined
    this.starting = undefined
    await seam?.close().catch((err: unknown) => { this.log?.debug({ err }, 'signalr: the Redis subscriber did not close cleanly') })
  }
}

/**
 * A Redis backplane over the application's own client. Options are checked at once; a bad
 * one throws FST_SIGNALR_INVALID_OPTION.
 */
export function redisBackplane (options: RedisBackplaneOptions): RedisBackplane {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError("'redisBackplane()'", 'takes an options object with a client')
  const { client, ...settings } = options
  if (!isIoRedis(client) && !isNodeRedis(client)) {
    throw new InvalidOptionError("'client'", 'must be a node-redis (createClient) or ioredis (new Redis) client')
  }
  if (isNodeRedis(client) && !client.isOpen) throw new InvalidOptionError("'client'", 'is not connected: call `await client.connect()` before redisBackplane()')
  validate(settings)
  return new RedisBackplane(client, settings.hubName, settings)
}

export { RedisHubLifetimeManager } from './manager.js'
export type { Backplane } from '../hub-lifetime-manager.js'
