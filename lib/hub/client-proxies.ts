// The `clients` targets of DESIGN.md. Each proxy turns send(method, ...args) into one
// lifetime-manager call, so the same code fans out in memory or across a backplane.
import type { HubLifetimeManager, SendPolicy, SendTarget } from '../lifetime/hub-lifetime-manager.js'
import { checkName, checkNames } from '../names.js'
import { MessageType } from '../protocol/messages.js'
import type { ClientProxy, HubCallerClients, HubClients, PolicyProxy, SingleClientProxy } from '../../types/index.js'
import type { ClientChecks } from './client-checks.js'

class PolicySender implements PolicyProxy {
  constructor (
    protected readonly lifetime: HubLifetimeManager,
    protected readonly checks: ClientChecks,
    private readonly target: SendTarget,
    private readonly policy: SendPolicy | undefined
  ) {}

  async send (method: string, ...args: unknown[]): Promise<void> {
    checkName('method name', method)
    this.checks.arguments(method, args)
    await this.lifetime.send(this.target, { type: MessageType.Invocation, target: method, arguments: args }, this.policy)
  }
}

// One per target, made on first use: `clients.all.volatile.send(...)` in a loop allocates nothing
const VOLATILE: SendPolicy = { kind: 'volatile' }

class TargetProxy extends PolicySender implements ClientProxy {
  private volatileProxy: PolicyProxy | undefined

  constructor (lifetime: HubLifetimeManager, checks: ClientChecks, private readonly sendTarget: SendTarget) {
    super(lifetime, checks, sendTarget, undefined)
  }

  get volatile (): PolicyProxy {
    this.volatileProxy ??= new PolicySender(this.lifetime, this.checks, this.sendTarget, VOLATILE)
    return this.volatileProxy
  }

  latest (key: string): PolicyProxy {
    return new PolicySender(this.lifetime, this.checks, this.sendTarget, { kind: 'latest', key: checkName('latest key', key) })
  }
}

class ConnectionProxy extends TargetProxy implements SingleClientProxy {
  constructor (
    lifetime: HubLifetimeManager,
    checks: ClientChecks,
    private readonly connectionId: string,
    private readonly timeoutMs: number,
    private readonly beforeInvoke: (() => void) | undefined
  ) {
    super(lifetime, checks, { kind: 'connections', ids: [connectionId] })
  }

  async invoke<T = unknown> (method: string, ...args: unknown[]): Promise<T> {
    checkName('method name', method)
    this.checks.arguments(method, args)
    this.beforeInvoke?.()
    const result = await this.lifetime.invokeConnection(this.connectionId, method, args, this.timeoutMs)
    return this.checks.result(method, this.connectionId, result) as T
  }
}

/** Targets for code without a caller (app.signalr.hub(path).clients). */
export class Clients implements HubClients {
  readonly all: ClientProxy

  constructor (
    protected readonly lifetime: HubLifetimeManager,
    protected readonly clientResultTimeout: number,
    protected readonly checks: ClientChecks,
    protected readonly beforeInvoke?: () => void
  ) {
    this.all = new TargetProxy(lifetime, checks, { kind: 'all' })
  }

  client (connectionId: string): SingleClientProxy {
    return new ConnectionProxy(this.lifetime, this.checks, checkName('connection id', connectionId), this.clientResultTimeout, this.beforeInvoke)
  }

  clients (connectionIds: readonly string[]): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'connections', ids: checkNames('connection id', connectionIds) })
  }

  allExcept (excludedConnectionIds: readonly string[]): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'all', exclude: checkNames('connection id', excludedConnectionIds) })
  }

  group (groupName: string): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'groups', names: [checkName('group name', groupName)] })
  }

  groups (groupNames: readonly string[]): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'groups', names: checkNames('group name', groupNames) })
  }

  groupExcept (groupName: string, excludedConnectionIds: readonly string[]): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, {
      kind: 'groups', names: [checkName('group name', groupName)], exclude: checkNames('connection id', excludedConnectionIds)
    })
  }

  user (userId: string): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'users', ids: [checkName('user id', userId)] })
  }

  users (userIds: readonly string[]): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'users', ids: checkNames('user id', userIds) })
  }
}

/** Targets relative to the calling connection (ctx.clients). */
export class CallerClients extends Clients implements HubCallerClients {
  private callerProxy: SingleClientProxy | undefined
  private othersProxy: ClientProxy | undefined

  constructor (
    lifetime: HubLifetimeManager,
    clientResultTimeout: number,
    checks: ClientChecks,
    private readonly connectionId: string,
    beforeInvoke: () => void
  ) {
    super(lifetime, clientResultTimeout, checks, beforeInvoke)
  }

  get caller (): SingleClientProxy {
    this.callerProxy ??= new ConnectionProxy(this.lifetime, this.checks, this.connectionId, this.clientResultTimeout, this.beforeInvoke)
    return this.callerProxy
  }

  get others (): ClientProxy {
    this.othersProxy ??= new TargetProxy(this.lifetime, this.checks, { kind: 'all', exclude: [this.connectionId] })
    return this.othersProxy
  }

  othersInGroup (groupName: string): ClientProxy {
    return new TargetProxy(this.lifetime, this.checks, { kind: 'groups', names: [checkName('group name', groupName)], exclude: [this.connectionId] })
  }
}
