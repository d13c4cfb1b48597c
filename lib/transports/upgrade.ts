// WebSocket upgrades with `ws` directly, without @fastify/websocket's decorators, so that an
// application can register that plugin for its own `{ websocket: true }` routes before or
// after this one. One dispatcher per HTTP server hands each upgrade request to Fastify's
// router, so the hub's hooks run as for any request; the hub's GET route then upgrades it.
// When something else dispatches upgrades on the same server (@fastify/websocket does, in
// the same way), ours stands aside, so no request is routed twice.
import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { WebSocketServer, type WebSocket } from 'ws'
import { isPathRewriter } from './path-case.js'

type Router = (req: IncomingMessage, res: ServerResponse) => void

const EMPTY = Buffer.alloc(0)
/** Bytes a client sent after its upgrade request, before the answer (rare, but ws wants them). */
const heads = new WeakMap<IncomingMessage, Buffer>()

/** Whether Node handed this request over as an upgrade to WebSocket. */
export function isWebSocketUpgrade (request: FastifyRequest): boolean {
  return (request.raw as IncomingMessage & { upgrade?: boolean }).upgrade === true &&
    request.headers.upgrade?.toLowerCase() === 'websocket'
}

function destroyOnError (this: Duplex): void {
  this.destroy()
}

const byOwner = new WeakMap<object, WebSocketUpgrades>()

/** The upgrades of the plugin whose app.signalr is `owner`, for its tests (every server socket). */
export function upgradesOf (owner: object): WebSocketUpgrades {
  const upgrades = byOwner.get(owner)
  if (upgrades === undefined) throw new TypeError('not an app.signalr object')
  return upgrades
}

export class WebSocketUpgrades {
  private readonly servers = new Set<WebSocketServer>()
  private attached: Server | undefined

  constructor (private readonly log: FastifyBaseLogger, owner: object) {
    byOwner.set(owner, this)
  }

  /** Starts dispatching upgrades on `server` into `route` (Fastify's router). */
  attach (server: Server, route: Router): void {
    if (this.attached !== undefined) return
    this.attached = server
    this.onUpgrade = (req, socket, head) => {
      if (head.length > 0) heads.set(req, head)
      // Another dispatcher (@fastify/websocket) on this server routes every upgrade through
      // Fastify itself; our routes take the socket from there
      if (server.listeners('upgrade').some((l) => l !== this.onUpgrade && !isPathRewriter(l))) return
      // Node removed its own error listener before emitting 'upgrade'
      socket.on('error', destroyOnError)
      const res = new ServerResponse(req)
      res.assignSocket(socket as never)
      // A request answered without an upgrade (a 401 from a hook, a 404) ends its socket
      res.once('finish', () => { socket.end() })
      try {
        route(req, res)
      } catch (err) {
        this.log.warn({ err }, 'signalr: WebSocket upgrade failed')
        socket.destroy()
      }
    }
    server.on('upgrade', this.onUpgrade)
  }

  private onUpgrade: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined

  /** A WebSocket server for one hub: ws reads maxPayload per server (0: no limit). */
  server (maxPayload: number): WebSocketServer {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload })
    this.servers.add(wss)
    return wss
  }

  /**
   * Completes the upgrade of a routed request; the caller has hijacked the reply, whose
   * `response` is let go of here. `onSocket` must listen for the socket's 'error'.
   */
  upgrade (wss: WebSocketServer, request: FastifyRequest, response: ServerResponse, onSocket: (socket: WebSocket) => void): void {
    const raw = request.raw
    const socket = raw.socket
    // ws owns the socket's errors from here on
    socket.removeListener('error', destroyOnError)
    // The socket would keep the unused response (and its stream state and listeners) for as
    // long as the connection lives: several hundred bytes per idle connection
    if (response.socket === socket) response.detachSocket(socket as Socket)
    wss.handleUpgrade(raw, socket, heads.get(raw) ?? EMPTY, onSocket)
  }

  /** Every socket still open, for shutdown and for tests. */
  * clients (): Generator<WebSocket> {
    for (const wss of this.servers) yield * wss.clients
  }

  /** Stops taking upgrades and cuts what is left (after the Close messages went out). */
  async close (): Promise<void> {
    if (this.attached !== undefined && this.onUpgrade !== undefined) this.attached.removeListener('upgrade', this.onUpgrade)
    this.attached = undefined
    for (const socket of this.clients()) socket.terminate()
    await Promise.all([...this.servers].map(async (wss) => { await new Promise<void>((resolve) => { wss.close(() => { resolve() }) }) }))
  }
}
