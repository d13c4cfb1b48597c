// The registry behind app.signalr: hubs by path (and the paths of raw connection handlers),
// connections by token, the shared heartbeat
// that drives every connection's timers, and shutdown. Applications see it only through
// SignalRView, which shows the hubs and the counts and keeps the machinery out of reach.
import type { FastifyBaseLogger } from 'fastify'
import { Connection, newConnectionId, type ConnectionHost } from './connection.js'
import { HubMismatchError, UnknownHubError } from './errors.js'
import type { MappedHub } from './hub/mapped-hub.js'
import { checkName } from './names.js'
import type { ResolvedHubOptions } from './options.js'
import type { Transport } from './transports/transport.js'
import type { ClientMethodsOf, HubContext, HubDefinition, SignalRRegistry } from '../types/index.js'

/**
 * Connections the shared heartbeat ticks in one synchronous step before it yields the event
 * loop: at most this many Pings are written and timeouts checked per turn, however many
 * connections the process holds (about a millisecond's work).
 */
export const HEARTBEAT_CHUNK = 256

export class Registry implements SignalRRegistry {
  private readonly hubs = new Map<string, MappedHub>()
  /** Where app.signalrConnection() mapped raw connection handlers. */
  private readonly rawPaths = new Set<string>()
  private readonly byToken = new Map<string, Connection>()
  /**
   * Transports of ended connections that asked to linger (Long Polling), kept for a
   * disconnectTimeout so that the next poll gets the last queued messages and then 204
   * instead of a 404.
   */
  private readonly retired = new Map<string, { transport: Transport, until: number }>()
  /**
   * What to undo once a connection is gone for good (after its lingering, if it lingers): a
   * connection served for other servers (request forwarding) stops listening for them.
   */
  private readonly releases = new Map<string, () => void>()
  private heartbeat: NodeJS.Timeout | undefined
  private tickMs = 1000
  /** The heartbeat pass under way: the connections it has not visited yet, and the turn that goes on with them. */
  private pass: Iterator<Connection> | undefined
  private passStep: NodeJS.Immediate | undefined
  /** Connections one synchronous step of a heartbeat pass visits (HEARTBEAT_CHUNK; tests lower it). */
  heartbeatChunk = HEARTBEAT_CHUNK
  closing = false

  constructor (readonly log: FastifyBaseLogger) {}

  get paths (): readonly string[] {
    return [...this.hubs.keys()]
  }

  /** Whether a hub or a raw connection handler is mapped at `path`. */
  hasPath (path: string): boolean {
    const key = normalizePath(path)
    return this.hubs.has(key) || this.rawPaths.has(key)
  }

  addHub (hub: MappedHub): void {
    this.hubs.set(normalizePath(hub.path), hub)
    this.tune(hub.options)
  }

  /** A raw connection handler's path: its connections live here like a hub's; app.signalr.hub() does not know it. */
  addRaw (path: string, options: ResolvedHubOptions): void {
    this.rawPaths.add(normalizePath(path))
    this.tune(options)
  }

  /**
   * One timer for every connection, ticking fast enough for the tightest timeout; the .NET
   * server's heartbeat ticks once a second for the same checks.
   */
  private tune (o: ResolvedHubOptions): void {
    const tightest = Math.min(o.keepAliveInterval, o.clientTimeoutInterval, o.handshakeTimeout, o.disconnectTimeout, o.transportSendTimeout, o.longPollTimeout)
    this.tickMs = Math.max(5, Math.min(this.tickMs, Math.floor(tightest / 4)))
  }

  hub<H extends HubDefinition = HubDefinition> (path: string, definition?: H): HubContext<ClientMethodsOf<H>> {
    const hub = this.hubs.get(normalizePath(checkName('hub path', path)))
    if (hub === undefined) throw new UnknownHubError(path)
    // Naming the hub types its proxies; it must then be the hub that is mapped there
    if (definition !== undefined && hub.definition !== definition) throw new HubMismatchError(path)
    return hub.hubContext as unknown as HubContext<ClientMethodsOf<H>>
  }

  /**
   * A new connection, known by its token until it closes. Negotiate v0 clients use the id as
   * token. A WebSocket opened without negotiating (`skipNegotiation`) never uses its token
   * after the upgrade, so it gets one nobody is told: its public id authorizes nothing.
   */
  createConnection (hub: ConnectionHost, negotiateVersion: number, negotiated = true, ids?: { connectionId: string, token: string }): Connection {
    // With request forwarding, negotiate made the ids and another server may have answered it
    const connectionId = ids?.connectionId ?? newConnectionId()
    const token = ids?.token ?? (negotiateVersion > 0 || !negotiated ? newConnectionId() : connectionId)
    const connection = new Connection(hub, { connectionId, token, negotiateVersion })
    this.byToken.set(token, connection)
    this.startHeartbeat()
    return connection
  }

  /** Runs `fn` once the connection of `token` is gone for good. */
  onReleased (token: string, fn: () => void): void {
    this.releases.set(token, fn)
  }

  private release (token: string): void {
    const fn = this.releases.get(token)
    if (fn === undefined) return
    this.releases.delete(token)
    fn()
  }

  connection (token: string): Connection | undefined {
    return this.byToken.get(token)
  }

  forget (connection: Connection): void {
    if (this.byToken.get(connection.token) !== connection) return
    this.byToken.delete(connection.token)
    if (connection.transport?.lingersAfterClose === true && !this.closing) {
      this.retired.set(connection.token, { transport: connection.transport, until: Date.now() + connection.host.options.disconnectTimeout })
    } else {
      this.release(connection.token)
    }
    if (this.byToken.size === 0 && this.retired.size === 0) this.stopHeartbeat()
  }

  /** The transport of an ended connection that lingers (see `retired`). */
  retiredTransport (token: string): Transport | undefined {
    return this.retired.get(token)?.transport
  }

  get connectionCount (): number {
    return this.byToken.size
  }

  private startHeartbeat (): void {
    if (this.heartbeat !== undefined) return
    this.heartbeat = setInterval(() => {
      const now = Date.now()
      for (const [token, r] of this.retired) {
        if (r.until < now) {
          this.retired.delete(token)
          this.release(token)
        }
      }
      if (this.byToken.size === 0 && this.retired.size === 0) {
        this.stopHeartbeat()
        return
      }
      // A pass slower than the interval goes on; a second one would only visit the same connections twice
      if (this.pass !== undefined) return
      this.pass = this.byToken.values()
      this.heartbeatStep()
    }, this.tickMs)
    // The server's own handle keeps the process alive; the heartbeat must not
    this.heartbeat.unref()
  }

  /**
   * Ticks the next heartbeatChunk connections of the pass, then yields the event loop and
   * goes on in the next turn. A pass over every connection in one go blocked the loop for
   * as long as the connections took (the Pings' writes above all: about 3 µs each), so the
   * event-loop delay grew with the connection count; in steps it stays that of one chunk.
   * The Map's iterator is live: connections that leave before their turn are skipped, and
   * those that join meanwhile are ticked in this pass.
   */
  private heartbeatStep (): void {
    this.passStep = undefined
    const pass = this.pass
    if (pass === undefined) return
    // Each step's own clock: a pass may span several turns
    const now = Date.now()
    for (let i = 0; i < this.heartbeatChunk; i++) {
      const next = pass.next()
      if (next.done === true) {
        this.pass = undefined
        return
      }
      const c = next.value
      try {
        c.tick(now)
      } catch (err) {
        c.log.error({ err }, 'signalr: heartbeat check failed')
      }
    }
    // A tick may have closed the last connection and stopped the heartbeat
    if (this.pass !== pass) return
    this.passStep = setImmediate(() => { this.heartbeatStep() })
    this.passStep.unref()
  }

  private stopHeartbeat (): void {
    if (this.heartbeat === undefined) return
    clearInterval(this.heartbeat)
    this.heartbeat = undefined
    if (this.passStep !== undefined) clearImmediate(this.passStep)
    this.passStep = undefined
    this.pass = undefined
  }

  /**
   * app.close(): every connection gets a Close (allowing reconnect, so clients move to a
   * healthy server) and its transport ends; new negotiations are refused from now on.
   */
  async closeAll (): Promise<void> {
    this.closing = true
    for (const c of [...this.byToken.values()]) c.close({ allowReconnect: true })
    this.byToken.clear()
    this.retired.clear()
    // The lifetime managers unsubscribe everything as they close, after the last answers went out
    this.releases.clear()
    this.stopHeartbeat()
    // One turn of the event loop before Fastify may destroy the sockets (forceCloseConnections):
    // HTTP responses are uncorked, and write batches flushed, only then
    await new Promise((resolve) => { setImmediate(resolve) })
    await Promise.all([...this.hubs.values()].map(async (h) => { await h.lifetime.close() }))
  }
}

/** Hub paths match with or without a trailing slash. */
export function normalizePath (path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** What app.signalr is: the hubs and the counts; the registry itself stays private. */
export class SignalRView implements SignalRRegistry {
  readonly #registry: Registry

  constructor (registry: Registry) {
    this.#registry = registry
    views.set(this, registry)
  }

  hub<H extends HubDefinition = HubDefinition> (path: string, definition?: H): HubContext<ClientMethodsOf<H>> {
    return this.#registry.hub(path, definition)
  }

  get paths (): readonly string[] {
    return this.#registry.paths
  }

  get connectionCount (): number {
    return this.#registry.connectionCount
  }
}

const views = new WeakMap<SignalRView, Registry>()

/** The registry behind an app.signalr, for the plugin's own code and its tests. */
export function registryOf (view: SignalRRegistry): Registry {
  const registry = views.get(view as SignalRView)
  if (registry === undefined) throw new TypeError('not an app.signalr object')
  return registry
}
