// The hub context for code outside hub methods (app.signalr.hub(path)) and ctx.hub: sends,
// group changes and presence queries, all through the lifetime manager.
import type { HubLifetimeManager } from '../lifetime/hub-lifetime-manager.js'
import { checkName } from '../names.js'
import type { AsyncApiDocument, AsyncApiRequest, CloseOptions, GroupManager, HubContext, HubSnapshot, SnapshotOptions } from '../../types/index.js'
import type { ClientChecks } from './client-checks.js'
import { Clients } from './client-proxies.js'
import { toCloseOptions } from './invocation-context.js'
import { mergeSnapshots, snapshotLimit, type ServerSnapshot } from './snapshot.js'

export class Groups implements GroupManager {
  constructor (private readonly lifetime: HubLifetimeManager) {}

  async add (connectionId: string, groupName: string): Promise<void> {
    await this.lifetime.addToGroup(checkName('connection id', connectionId), checkName('group name', groupName))
  }

  async remove (connectionId: string, groupName: string): Promise<void> {
    await this.lifetime.removeFromGroup(checkName('connection id', connectionId), checkName('group name', groupName))
  }
}

export class MappedHubContext implements HubContext {
  readonly clients: Clients
  readonly groups: Groups

  constructor (
    readonly path: string,
    private readonly lifetime: HubLifetimeManager,
    clientResultTimeout: number,
    checks: ClientChecks,
    private readonly describe: (request?: AsyncApiRequest) => AsyncApiDocument,
    private readonly localSnapshot: (limit: number) => Promise<ServerSnapshot>
  ) {
    this.clients = new Clients(lifetime, clientResultTimeout, checks)
    this.groups = new Groups(lifetime)
  }

  asyncapi (request?: AsyncApiRequest): AsyncApiDocument {
    return this.describe(request)
  }

  async groupMembers (groupName: string): Promise<string[]> {
    return await this.lifetime.groupMembers(checkName('group name', groupName))
  }

  async groupsOf (connectionId: string): Promise<string[]> {
    return await this.lifetime.groupsOf(checkName('connection id', connectionId))
  }

  async userConnections (userId: string): Promise<string[]> {
    return await this.lifetime.userConnections(checkName('user id', userId))
  }

  async isUserOnline (userId: string): Promise<boolean> {
    return (await this.userConnections(userId)).length > 0
  }

  async connections (): Promise<string[]> {
    return await this.lifetime.connections()
  }

  async connectionCount (): Promise<number> {
    return await this.lifetime.connectionCount()
  }

  async close (connectionId: string, options: CloseOptions = {}): Promise<void> {
    await this.lifetime.closeConnection(checkName('connection id', connectionId), toCloseOptions(options))
  }

  async snapshot (options?: SnapshotOptions): Promise<HubSnapshot> {
    const limit = snapshotLimit(options)
    // A backplane asks every server of the fleet for its share; alone, this server's is all
    if (this.lifetime.snapshot !== undefined) {
      const { reports, unreachable } = await this.lifetime.snapshot(limit)
      return mergeSnapshots(reports, limit, unreachable)
    }
    return mergeSnapshots([{ snapshot: await this.localSnapshot(limit) }], limit, 0)
  }
}
