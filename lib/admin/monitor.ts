// What the admin page shows, made once per interval for every open page: one timer, running
// only while a page is connected, and one snapshot per tick sent to all of them. It reads
// nothing but app.signalr's public view.
import type { FastifyBaseLogger } from 'fastify'
import type { ConnectionInfo, SignalRRegistry } from '../../types/index.js'

export interface AdminHubView {
  path: string
  connectionCount: number
  /** Connections the snapshot leaves out (beyond maxConnections, per hub). */
  omitted: number
  /** Messages from and to clients per second over the last interval, fleet-wide. */
  messagesPerSecond: number
  servers: number
  unreachable: number
  connections: ConnectionInfo[]
  /** The groups of the listed connections, with the ids of their listed members. */
  groups: Array<{ name: string, members: string[] }>
  /** Set when the hub's snapshot failed (the backplane is down, say). */
  error?: string
}

export interface AdminSnapshot {
  at: number
  title: string
  hubs: AdminHubView[]
  totals: { connections: number, messagesPerSecond: number }
  /** [time in ms, connections of every hub] for the chart, oldest first. */
  history: Array<[number, number]>
  maxConnections: number
}

export interface MonitorSettings {
  title: string
  interval: number
  maxConnections: number
  historyLength: number
}

export class AdminMonitor {
  private viewers = 0
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<AdminSnapshot> | undefined
  private latest: AdminSnapshot | undefined
  private readonly history: Array<[number, number]> = []
  /** Message totals of each hub at the previous tick, for the rate. */
  private readonly previous = new Map<string, { at: number, total: number }>()
  private stopped = false

  constructor (
    private readonly signalr: SignalRRegistry,
    /** The admin hub's own path: its connections are the pages, not the application's. */
    private readonly adminPath: string,
    private readonly settings: MonitorSettings,
    private readonly log: FastifyBaseLogger
  ) {}

  /** A page connected: the first one starts the timer. */
  viewerJoined (): void {
    this.viewers++
    if (this.timer !== undefined || this.stopped) return
    this.timer = setInterval(() => { void this.broadcast() }, this.settings.interval)
    this.timer.unref()
  }

  viewerLeft (): void {
    this.viewers = Math.max(0, this.viewers - 1)
    if (this.viewers === 0) this.pause()
  }

  private pause (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  stop (): void {
    this.stopped = true
    this.pause()
  }

  /** What a page that just connected is given: the last tick's snapshot while it is current, else a new one. */
  async current (): Promise<AdminSnapshot> {
    const latest = this.latest
    if (latest !== undefined && Date.now() - latest.at < this.settings.interval) return latest
    return await this.tick()
  }

  private async broadcast (): Promise<void> {
    try {
      const snapshot = await this.tick()
      await this.signalr.hub(this.adminPath).clients.all.send('Snapshot', snapshot)
    } catch (err) {
      this.log.warn({ err }, 'signalr admin: a snapshot could not be made or sent')
    }
  }

  /** One snapshot at a time: a slow fleet makes ticks wait, never pile up. */
  private async tick (): Promise<AdminSnapshot> {
    this.ticking ??= this.make().finally(() => { this.ticking = undefined })
    return await this.ticking
  }

  private async make (): Promise<AdminSnapshot> {
    const paths = this.signalr.paths.filter((p) => p !== this.adminPath)
    const hubs = await Promise.all(paths.map(async (path) => await this.hubView(path)))
    const at = Date.now()
    const connections = hubs.reduce((sum, h) => sum + h.connectionCount, 0)
    this.history.push([at, connections])
    if (this.history.length > this.settings.historyLength) this.history.splice(0, this.history.length - this.settings.historyLength)
    const snapshot: AdminSnapshot = {
      at,
      title: this.settings.title,
      hubs,
      totals: { connections, messagesPerSecond: round(hubs.reduce((sum, h) => sum + h.messagesPerSecond, 0)) },
      history: [...this.history],
      maxConnections: this.settings.maxConnections
    }
    this.latest = snapshot
    return snapshot
  }

  private async hubView (path: string): Promise<AdminHubView> {
    try {
      const s = await this.signalr.hub(path).snapshot({ limit: this.settings.maxConnections })
      const now = Date.now()
      const total = s.messagesReceived + s.messagesSent
      const before = this.previous.get(path)
      this.previous.set(path, { at: now, total })
      const seconds = before === undefined ? 0 : (now - before.at) / 1000
      const messagesPerSecond = before !== undefined && seconds > 0 ? round(Math.max(0, total - before.total) / seconds) : 0
      return {
        path,
        connectionCount: s.connectionCount,
        omitted: s.omitted,
        messagesPerSecond,
        servers: s.servers,
        unreachable: s.unreachable,
        connections: s.connections,
        groups: groupsOf(s.connections)
      }
    } catch (err) {
      this.log.warn({ err, hub: path }, 'signalr admin: the snapshot of a hub failed')
      return { path, connectionCount: 0, omitted: 0, messagesPerSecond: 0, servers: 0, unreachable: 0, connections: [], groups: [], error: (err as Error).message }
    }
  }
}

function groupsOf (connections: readonly ConnectionInfo[]): Array<{ name: string, members: string[] }> {
  const groups = new Map<string, string[]>()
  for (const c of connections) {
    for (const g of c.groups) {
      let members = groups.get(g)
      if (members === undefined) {
        members = []
        groups.set(g, members)
      }
      members.push(c.connectionId)
    }
  }
  return [...groups].map(([name, members]) => ({ name, members })).sort((a, b) => a.name.localeCompare(b.name))
}

function round (n: number): number {
  return Math.round(n * 10) / 10
}
