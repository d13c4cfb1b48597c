// Fleet-wide presence, under keys of our own (ASP.NET Core keeps none, so a .NET server in
// the fleet is simply not counted):
//
//   {hub}:fastify-signalr:servers            SET   every server that has written a share
//   {hub}:fastify-signalr:alive:{server}     STR   the heartbeat, with a TTL of 3 heartbeats
//   {hub}:fastify-signalr:conns:{server}     HASH  connectionId -> JSON {u: userId?, g: [groups]}
//   {hub}:fastify-signalr:group:{name}       SET   "{server} {connectionId}"
//   {hub}:fastify-signalr:user:{id}          SET   "{server} {connectionId}"
//
// A server's share counts only while its heartbeat key exists: when a server dies, its
// entries drop out of every answer as soon as the key expires (at most ttlMs after its last
// heartbeat), and the next heartbeat of any live server deletes them. Each server writes
// only its own share and can rewrite all of it from memory, which it does whenever Redis
// comes back (a restarted Redis has lost everything).
import type { RedisChannels } from './channels.js'
import type { RedisSeam } from './seam.js'

export interface LocalShare {
  /** Every local connection: id, user, groups. */
  entries (): Iterable<{ connectionId: string, userId: string | undefined, groups: Iterable<string> }>
}

interface Record { u?: string, g: string[] }

export class Presence {
  readonly ttlMs: number
  private readonly serversKey: string
  private readonly aliveKey: string
  private readonly connsKey: string

  constructor (
    private readonly seam: RedisSeam,
    private readonly channels: RedisChannels,
    private readonly serverName: string,
    heartbeatMs: number
  ) {
    this.ttlMs = heartbeatMs * 3
    this.serversKey = channels.key('servers')
    this.aliveKey = this.aliveOf(serverName)
    this.connsKey = this.connsOf(serverName)
  }

  private aliveOf (server: string): string { return this.channels.key('alive', server) }
  private connsOf (server: string): string { return this.channels.key('conns', server) }
  private groupKey (name: string): string { return this.channels.key('group', name) }
  private userKey (id: string): string { return this.channels.key('user', id) }
  private member (connectionId: string): string { return `${this.serverName} ${connectionId}` }

  private async run (args: Array<string | Buffer>): Promise<unknown> {
    return await this.seam.command(args)
  }

  /** Refreshes the heartbeat, and collects the shares of servers whose heartbeat expired. */
  async heartbeat (): Promise<void> {
    await Promise.all([
      this.run(['SET', this.aliveKey, '1', 'PX', String(this.ttlMs)]),
      this.run(['SADD', this.serversKey, this.serverName])
    ])
    const servers = await this.servers()
    const dead = servers.filter((s) => !s.alive).map((s) => s.name)
    for (const server of dead) await this.reap(server)
  }

  private async reap (server: string): Promise<void> {
    // One live server does the work; the claim expires by itself if that one dies too
    const claimed = await this.run(['SET', this.channels.key('reaping', server), this.serverName, 'NX', 'PX', String(this.ttlMs * 4)])
    if (claimed === null) return
    await this.dropShare(server)
    await this.run(['SREM', this.serversKey, server])
  }

  /** Deletes a server's record hash and every index entry it lists. */
  private async dropShare (server: string): Promise<void> {
    const entries = toPairs(await this.run(['HGETALL', this.connsOf(server)]))
    const member = (id: string): string => `${server} ${id}`
    await Promise.all(entries.map(async ([id, json]) => {
      const r = parseRecord(json)
      await Promise.all([
        ...r.g.map(async (g) => await this.run(['SREM', this.groupKey(g), member(id)])),
        ...(r.u === undefined ? [] : [this.run(['SREM', this.userKey(r.u), member(id)])])
      ])
    }))
    await this.run(['DEL', this.connsOf(server)])
  }

  private async servers (): Promise<Array<{ name: string, alive: boolean }>> {
    const names = toStrings(await this.run(['SMEMBERS', this.serversKey]))
    if (names.length === 0) return []
    const alive = await this.run(['MGET', ...names.map((n) => this.aliveOf(n))]) as unknown[]
    return names.map((name, i) => ({ name, alive: alive[i] !== null && alive[i] !== undefined }))
  }

  /** Servers whose heartbeat has not expired. */
  async liveServers (): Promise<string[]> {
    return (await this.servers()).filter((s) => s.alive).map((s) => s.name)
  }

  /** Writes this server's whole share again (after Redis came back, or at start). */
  async rewrite (share: LocalShare): Promise<void> {
    // What Redis still holds of ours may be stale (removals that failed while it was
    // unreachable): drop it all, then write what is true now
    await this.dropShare(this.serverName)
    const writes: Array<Promise<unknown>> = []
    for (const e of share.entries()) writes.push(this.put(e.connectionId, e.userId, [...e.groups], true))
    await Promise.all(writes)
    await this.heartbeat()
  }

  /** A local connection's record, and its index entries when `index` is set. */
  async put (connectionId: string, userId: string | undefined, groups: string[], index: boolean): Promise<void> {
    const record: Record = userId === undefined ? { g: groups } : { u: userId, g: groups }
    const writes = [this.run(['HSET', this.connsKey, connectionId, JSON.stringify(record)])]
    if (index) {
      for (const g of groups) writes.push(this.run(['SADD', this.groupKey(g), this.member(connectionId)]))
      if (userId !== undefined) writes.push(this.run(['SADD', this.userKey(userId), this.member(connectionId)]))
    }
    await Promise.all(writes)
  }

  async joined (connectionId: string, userId: string | undefined, groups: string[], group: string): Promise<void> {
    await Promise.all([
      this.run(['SADD', this.groupKey(group), this.member(connectionId)]),
      this.put(connectionId, userId, groups, false)
    ])
  }

  async left (connectionId: string, userId: string | undefined, groups: string[], group: string): Promise<void> {
    await Promise.all([
      this.run(['SREM', this.groupKey(group), this.member(connectionId)]),
      this.put(connectionId, userId, groups, false)
    ])
  }

  async removed (connectionId: string, userId: string | undefined, groups: Iterable<string>): Promise<void> {
    const writes = [this.run(['HDEL', this.connsKey, connectionId])]
    for (const g of groups) writes.push(this.run(['SREM', this.groupKey(g), this.member(connectionId)]))
    if (userId !== undefined) writes.push(this.run(['SREM', this.userKey(userId), this.member(connectionId)]))
    await Promise.all(writes)
  }

  /** This server leaves the fleet: its share goes at once, not at heartbeat expiry. */
  async withdraw (share: LocalShare): Promise<void> {
    const writes: Array<Promise<unknown>> = []
    for (const e of share.entries()) writes.push(this.removed(e.connectionId, e.userId, e.groups))
    await Promise.all(writes)
    await Promise.all([this.run(['DEL', this.connsKey]), this.run(['DEL', this.aliveKey]), this.run(['SREM', this.serversKey, this.serverName])])
  }

  private async indexMembers (key: string): Promise<string[]> {
    const [members, live] = await Promise.all([this.run(['SMEMBERS', key]), this.liveServers()])
    const alive = new Set(live)
    const out: string[] = []
    for (const m of toStrings(members)) {
      const space = m.indexOf(' ')
      if (space > 0 && alive.has(m.slice(0, space))) out.push(m.slice(space + 1))
    }
    return out
  }

  async groupMembers (group: string): Promise<string[]> {
    return await this.indexMembers(this.groupKey(group))
  }

  async userConnections (userId: string): Promise<string[]> {
    return await this.indexMembers(this.userKey(userId))
  }

  async connections (): Promise<string[]> {
    const live = await this.liveServers()
    const lists = await Promise.all(live.map(async (s) => toStrings(await this.run(['HKEYS', this.connsOf(s)]))))
    return lists.flat()
  }

  async connectionCount (): Promise<number> {
    const live = await this.liveServers()
    const counts = await Promise.all(live.map(async (s) => Number(await this.run(['HLEN', this.connsOf(s)]))))
    return counts.reduce((a, b) => a + b, 0)
  }

  /** Which live server holds a connection, and its groups there; undefined when none does. */
  async find (connectionId: string): Promise<{ server: string, groups: string[] } | undefined> {
    const live = await this.liveServers()
    const found = await Promise.all(live.map(async (s) => await this.run(['HGET', this.connsOf(s), connectionId])))
    for (let i = 0; i < live.length; i++) {
      const json = found[i]
      if (typeof json === 'string' || Buffer.isBuffer(json)) return { server: live[i], groups: parseRecord(String(json)).g }
    }
    return undefined
  }
}

function parseRecord (json: string): Record {
  try {
    const v = JSON.parse(json) as Partial<Record>
    return { u: typeof v.u === 'string' ? v.u : undefined, g: Array.isArray(v.g) ? v.g.filter((x): x is string => typeof x === 'string') : [] }
  } catch {
    return { g: [] }
  }
}

function toStrings (reply: unknown): string[] {
  if (!Array.isArray(reply)) return []
  return reply.map((x) => String(x))
}

/** HGETALL: an array of alternating fields and values (or an object, from some clients). */
function toPairs (reply: unknown): Array<[string, string]> {
  if (Array.isArray(reply)) {
    const out: Array<[string, string]> = []
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([String(reply[i]), String(reply[i + 1])])
    return out
  }
  if (typeof reply === 'object' && reply !== null) return Object.entries(reply).map(([k, v]) => [k, String(v)])
  return []
}
