// The in-memory lifetime manager: one process, exact presence answers. Indexes run both
// ways (group -> connections and connection -> groups) so a disconnect costs O(its groups),
// not O(all groups) — the cost ASP.NET Core paid until 8.0.3.
import { ClientResultError } from '../errors.js'
import type { InvocationMessage } from '../protocol/messages.js'
import { SerializedMessage } from '../protocol/serialized-message.js'
import type { HubLifetimeManager, LifetimeConnection, SendPolicy, SendTarget } from './hub-lifetime-manager.js'

export class MemoryHubLifetimeManager implements HubLifetimeManager {
  private readonly byId = new Map<string, LifetimeConnection>()
  private readonly groups = new Map<string, Set<LifetimeConnection>>()
  private readonly groupsOfConnection = new Map<LifetimeConnection, Set<string>>()
  private readonly users = new Map<string, Set<LifetimeConnection>>()

  async onConnected (connection: LifetimeConnection): Promise<void> {
    this.byId.set(connection.connectionId, connection)
    if (connection.userId !== undefined) addTo(this.users, connection.userId, connection)
  }

  async onDisconnected (connection: LifetimeConnection): Promise<void> {
    if (this.byId.get(connection.connectionId) === connection) this.byId.delete(connection.connectionId)
    const names = this.groupsOfConnection.get(connection)
    if (names !== undefined) {
      for (const name of names) removeFrom(this.groups, name, connection)
      this.groupsOfConnection.delete(connection)
    }
    if (connection.userId !== undefined) removeFrom(this.users, connection.userId, connection)
  }

  async send (target: SendTarget, message: InvocationMessage, policy?: SendPolicy): Promise<void> {
    const serialized = new SerializedMessage(message)
    let congested: LifetimeConnection[] | undefined
    const write = (c: LifetimeConnection): void => {
      if (c.write(serialized, policy) && policy === undefined && c.congested) (congested ??= []).push(c)
    }
    switch (target.kind) {
      case 'all': {
        const exclude = toSet(target.exclude)
        for (const c of this.byId.values()) {
          if (exclude === undefined || !exclude.has(c.connectionId)) write(c)
        }
        break
      }
      case 'connections':
        for (const id of target.ids) {
          const c = this.byId.get(id)
          if (c !== undefined) write(c)
        }
        break
      case 'groups': {
        const exclude = toSet(target.exclude)
        // Like ASP.NET Core, a connection in two of the named groups gets the message twice
        for (const name of target.names) {
          const members = this.groups.get(name)
          if (members === undefined) continue
          for (const c of members) {
            if (exclude === undefined || !exclude.has(c.connectionId)) write(c)
          }
        }
        break
      }
      case 'users':
        for (const id of target.ids) {
          const conns = this.users.get(id)
          if (conns !== undefined) for (const c of conns) write(c)
        }
    }
    // Targets speaking another protocol have it; the sender learns that some could not
    if (serialized.error !== undefined) throw serialized.error
    // The message is already queued everywhere; only the sender waits, for the slow ones
    if (congested !== undefined) await Promise.all(congested.map(async (c) => { await c.drained() }))
  }

  async invokeConnection (connectionId: string, method: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    const connection = this.byId.get(connectionId)
    if (connection === undefined) throw new ClientResultError(`Connection '${connectionId}' does not exist.`)
    return await connection.invokeClient({ target: method, arguments: args }, timeoutMs)
  }

  async closeConnection (connectionId: string, options: { error?: Error, allowReconnect?: boolean }): Promise<void> {
    this.byId.get(connectionId)?.close(options)
  }

  async addToGroup (connectionId: string, groupName: string): Promise<void> {
    const connection = this.byId.get(connectionId)
    if (connection === undefined) return
    addTo(this.groups, groupName, connection)
    let names = this.groupsOfConnection.get(connection)
    if (names === undefined) {
      names = new Set()
      this.groupsOfConnection.set(connection, names)
    }
    names.add(groupName)
  }

  async removeFromGroup (connectionId: string, groupName: string): Promise<void> {
    const connection = this.byId.get(connectionId)
    if (connection === undefined) return
    removeFrom(this.groups, groupName, connection)
    const names = this.groupsOfConnection.get(connection)
    if (names !== undefined) {
      names.delete(groupName)
      if (names.size === 0) this.groupsOfConnection.delete(connection)
    }
  }

  async groupMembers (groupName: string): Promise<string[]> {
    return ids(this.groups.get(groupName))
  }

  async groupsOf (connectionId: string): Promise<string[]> {
    const connection = this.byId.get(connectionId)
    const names = connection === undefined ? undefined : this.groupsOfConnection.get(connection)
    return names === undefined ? [] : [...names]
  }

  async userConnections (userId: string): Promise<string[]> {
    return ids(this.users.get(userId))
  }

  async connections (): Promise<string[]> {
    return [...this.byId.keys()]
  }

  async connectionCount (): Promise<number> {
    return this.byId.size
  }

  async close (): Promise<void> {
    this.byId.clear()
    this.groups.clear()
    this.groupsOfConnection.clear()
    this.users.clear()
  }

  /** Sizes of every index, for leak checks. */
  indexSizes (): { connections: number, groups: number, connectionGroups: number, users: number } {
    return { connections: this.byId.size, groups: this.groups.size, connectionGroups: this.groupsOfConnection.size, users: this.users.size }
  }
}

function addTo<K, V> (map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key)
  if (set === undefined) {
    set = new Set()
    map.set(key, set)
  }
  set.add(value)
}

function removeFrom<K, V> (map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key)
  if (set === undefined) return
  set.delete(value)
  // Empty sets are dropped so that churn over many group names cannot grow the map
  if (set.size === 0) map.delete(key)
}

function ids (set: Set<LifetimeConnection> | undefined): string[] {
  if (set === undefined) return []
  const out: string[] = []
  for (const c of set) out.push(c.connectionId)
  return out
}

function toSet (list: readonly string[] | undefined): Set<string> | undefined {
  return list === undefined || list.length === 0 ? undefined : new Set(list)
}
