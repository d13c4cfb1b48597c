// Hub paths match without regard to case, as ASP.NET Core's routing matches them: a client
// sent to /authorizedHub (by a negotiate redirect, say) reaches the hub mapped at
// /authorizedhub. Fastify's router is case-sensitive for the whole server, and turning that
// off would change every route of the application. Instead, before Fastify routes a
// request, a URL whose path is a hub's path in another case is rewritten to the hub's own
// spelling; every other URL is left as it came.
import type { IncomingMessage, Server } from 'node:http'

type Rewriter = (req: IncomingMessage) => void

const rewriters = new WeakSet<object>()

/** Whether `listener` is a HubPathCase's own (the upgrade dispatcher does not count it as another dispatcher). */
export function isPathRewriter (listener: unknown): boolean {
  return typeof listener === 'function' && rewriters.has(listener)
}

export class HubPathCase {
  /** Lower-cased route path → the path as mapped. */
  private readonly canonical = new Map<string, string>()
  /** Paths as mapped: a request already spelled like one is never rewritten to another. */
  private readonly exact = new Set<string>()
  private attached: Server | undefined
  private readonly listener: Rewriter = (req) => { this.rewrite(req) }

  constructor () {
    rewriters.add(this.listener)
  }

  /** Records the routes of a hub reached at `path` (normalised, without a trailing slash). */
  add (path: string): void {
    const routes = path === '/' ? ['/', '/negotiate'] : [path, path + '/', path + '/negotiate']
    for (const route of routes) {
      this.exact.add(route)
      const key = route.toLowerCase()
      if (!this.canonical.has(key)) this.canonical.set(key, route)
    }
  }

  /** Runs before Fastify's own listeners on `server`, for requests and for upgrades. */
  attach (server: Server): void {
    if (this.attached !== undefined) return
    this.attached = server
    server.prependListener('request', this.listener)
    server.prependListener('upgrade', this.listener)
  }

  detach (): void {
    this.attached?.removeListener('request', this.listener)
    this.attached?.removeListener('upgrade', this.listener)
    this.attached = undefined
  }

  rewrite (req: IncomingMessage): void {
    const url = req.url
    if (url === undefined) return
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (this.exact.has(path)) return
    const mapped = this.canonical.get(path.toLowerCase())
    if (mapped !== undefined) req.url = q === -1 ? mapped : mapped + url.slice(q)
  }
}
