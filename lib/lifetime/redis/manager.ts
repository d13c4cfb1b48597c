// The Redis hub lifetime manager: ASP.NET Core's RedisHubLifetimeManager, channel for channel
// and byte for byte (signalr-wire.md §9), plus fleet-wide presence and remote close under
// channels and keys of our own. Local receivers get all, group and user sends through this
// server's own subscription, so every receiver sees one sender's messages in the order sent.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import {
  BackplaneAckTimeoutError, BackplaneUnavailableError, ClientResultError, ClientResultRejectedError, ClientResultTimeoutError, HubError
} from '../../errors.js'
import { ServerSnapshotCheck, SNAPSHOT_MAX_LIMIT, type ServerSnapshot } from '../../hub/snapshot.js'
import type { HubProtocol } from '../../protocol/hub-protocol.js'
import { MessageType, type CompletionMessage, type InvocationMessage } from '../../protocol/messages.js'
import { SerializedMessage } from '../../protocol/serialized-message.js'
import type { BackplaneHub, HubLifetimeManager, LifetimeConnection, SendPolicy, SendTarget } from '../hub-lifetime-manager.js'
import { RedisChannels } from './channels.js'
import {
  GroupAction, readAck, readCompletion, readGroupCommand, readInvocation, writeAck, writeCompletion, writeGroupCommand, writeInvocation,
  type GroupActionValue, type RedisInvocation
} from './codec.js'
import { RedisForwarding } from './forwarding.js'
import { Presence } from './presence.js'
import { RemoteMessage } from './remote-message.js'
import { ServerRequests } from './requests.js'
import { observedSeam } from './observed-seam.js'
import type { RedisSeam } from './seam.js'
import { SubscriptionTable } from './subscriptions.js'

export interface RedisManagerSettings {
  hubName: string
  channelPrefix: string
  serverName: string
  ackTimeout: number
  heartbeatInterval: number
  commandTimeout: number
  /** Request forwarding (no sticky sessions): off unless set. */
  forwarding?: { probeInterval: number }
}

interface Waiter<T> {
  resolve: (value: T) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

const NO_GROUPS: ReadonlySet<string> = new Set()

export class RedisHubLifetimeManager implements HubLifetimeManager {
  readonly channels: RedisChannels
  readonly presence: Presence
  private readonly protocols: HubProtocol[]
  private readonly log: FastifyBaseLogger
  private readonly local = new Map<string, LifetimeConnection>()
  /** Local connections a delivery left congested: this server's senders wait for them. */
  private readonly congestedLocal = new Set<LifetimeConnection>()
  private readonly localGroups = new Map<LifetimeConnection, Set<string>>()
  private readonly gone = new WeakSet<LifetimeConnection>()
  private readonly connectionSubs: SubscriptionTable<LifetimeConnection>
  private readonly groupSubs: SubscriptionTable<LifetimeConnection>
  private readonly userSubs: SubscriptionTable<LifetimeConnection>
  private readonly requests: ServerRequests
  readonly forwarding: RedisForwarding | undefined
  private readonly acks = new Map<number, Waiter<void>>()
  private readonly results = new Map<string, Waiter<unknown> & { method: string }>()
  private readonly inflight = new Set<Promise<unknown>>()
  private ackId = 0
  private starting: Promise<void> | undefined
  private closed = false
  /** This server's share of presence may be missing from Redis: the heartbeat rewrites it. */
  private presenceStale = false
  /** The rewrite under way: a heartbeat does not start a second one beside it. */
  private rewriting: Promise<void> | undefined

  private readonly seam: RedisSeam

  constructor (
    seam: RedisSeam,
    private readonly seamStarted: () => Promise<void>,
    private readonly hub: BackplaneHub,
    private readonly settings: RedisManagerSettings,
    private readonly onClosed: (m: RedisHubLifetimeManager) => void
  ) {
    this.log = hub.log
    this.protocols = [...hub.protocols.values()]
    this.channels = new RedisChannels(settings.channelPrefix, settings.hubName, settings.serverName)
    this.seam = observedSeam(seam, this.channels, hub.observer)
    this.presence = new Presence(this.seam, this.channels, settings.serverName, settings.heartbeatInterval)
    this.requests = new ServerRequests(this.seam, this.channels, this.log)
    this.forwarding = settings.forwarding === undefined
      ? undefined
      : new RedisForwarding(this.seam, this.channels, { serverName: settings.serverName, probeInterval: settings.forwarding.probeInterval },
        async () => { await this.ensureStarted() }, (work) => { void this.track(work) }, this.log)
    this.requests.handle('close', async ([connectionId, error, allowReconnect]) => {
      const c = this.local.get(connectionId)
      c?.close({ error: error === '' ? undefined : new HubError(error), allowReconnect: allowReconnect === '1' })
      return [c === undefined ? '0' : '1']
    })
    // Another server's hubContext.snapshot(): this server's share, as JSON in one string
    this.requests.handle('snapshot', async ([limit]) => {
      const n = Math.min(Math.max(0, Math.trunc(Number(limit)) || 0), SNAPSHOT_MAX_LIMIT)
      return [JSON.stringify(await this.localSnapshot(n))]
    })
    const deliver = (channel: string, payload: Buffer, members: ReadonlySet<LifetimeConnection>): void => {
      this.deliver(channel, payload, members)
    }
    this.connectionSubs = new SubscriptionTable(this.seam, (channel, payload, members) => { this.onConnectionMessage(channel, payload, members) })
    this.groupSubs = new SubscriptionTable(this.seam, deliver)
    this.userSubs = new SubscriptionTable(this.seam, deliver)
    // Subscribed at once, as ASP.NET Core does: a broadcast published while the first
    // connection is being accepted must not be missed. A failure is retried by the next call.
    this.ensureStarted().catch((err: unknown) => { this.log.warn({ err }, 'signalr: the Redis backplane could not subscribe yet; it will try again') })
  }

  /** Subscribes the fixed channels once; a failed start is tried again by the next call. */
  private async ensureStarted (): Promise<void> {
    if (this.closed) throw new BackplaneUnavailableError('the hub is closing')
    this.starting ??= this.start().catch((err: unknown) => {
      this.starting = undefined
      throw err
    })
    await this.starting
  }

  private async start (): Promise<void> {
    await this.seamStarted()
    const c = this.channels
    await Promise.all([
      this.seam.subscribe(c.all, (payload) => { this.deliver(c.all, payload, this.local.values()) }),
      this.seam.subscribe(c.groupManagement, (payload) => { this.onGroupCommand(payload) }),
      this.seam.subscribe(c.ack, (payload) => { this.onAck(payload) }),
      this.seam.subscribe(c.returnResults, (payload) => { this.onReturn(payload) }),
      this.requests.start(),
      this.forwarding?.start()
    ])
    await this.rewritePresence().catch((err: unknown) => { this.log.warn({ err }, 'signalr: could not write presence to Redis; the next heartbeat tries again') })
  }

  /**
   * Writes this server's share of presence in full. Until that succeeds each heartbeat tries
   * again: a rewrite drops the old share first, so one that failed half-way (a command timed
   * out under load, say) would otherwise leave the share missing until the next reconnect.
   */
  private async rewritePresence (): Promise<void> {
    this.presenceStale = true
    const run = this.presence.rewrite(this)
    this.rewriting = run
    try {
      await run
      // Only the latest rewrite says the share is whole: an older one may predate a reconnect
      if (this.rewriting === run) this.presenceStale = false
    } finally {
      if (this.rewriting === run) this.rewriting = undefined
    }
  }

  /** Work that close() waits for. */
  private track<T> (p: Promise<T>): Promise<T> {
    this.inflight.add(p)
    const done = (): void => { this.inflight.delete(p) }
    p.then(done, done)
    return p
  }

  // -------------------------------------------------------------------------------------
  // The local share (presence and resubscription read it)

  * entries (): Iterable<{ connectionId: string, userId: string | undefined, groups: Iterable<string> }> {
    for (const c of this.local.values()) yield { connectionId: c.connectionId, userId: c.userId, groups: this.localGroups.get(c) ?? NO_GROUPS }
  }

  /** Every channel this hub has subscribed, for resubscription checks (PUBSUB NUMSUB) and leak tests. */
  subscribedChannels (): string[] {
    const c = this.channels
    const forwarding = this.forwarding === undefined ? [] : [this.forwarding.replies, ...this.forwarding.servedChannels()]
    return [c.all, c.groupManagement, c.ack, c.returnResults, c.requests, ...forwarding,
      ...this.connectionSubs.channels(), ...this.groupSubs.channels(), ...this.userSubs.channels()]
  }

  /** Sizes of every index, for leak checks. */
  indexSizes (): Record<string, number> {
    return {
      connections: this.local.size,
      connectionGroups: this.localGroups.size,
      connectionSubscriptions: this.connectionSubs.size,
      groupSubscriptions: this.groupSubs.size,
      userSubscriptions: this.userSubs.size,
      pendingAcks: this.acks.size,
      pendingResults: this.results.size,
      pendingRequests: this.requests.pendingCount,
      pendingForwards: this.forwarding?.pendingCount ?? 0,
      servedForOthers: this.forwarding?.servedChannels().length ?? 0
    }
  }

  // -------------------------------------------------------------------------------------
  // Connections

  async onConnected (connection: LifetimeConnection): Promise<void> {
    await this.track(this.connected(connection))
  }

  private async connected (connection: LifetimeConnection): Promise<void> {
    // Known here at once: a group command from another server may already be on its way
    // (the client has its handshake answer and may be quick)
    this.local.set(connection.connectionId, connection)
    try {
      await this.ensureStarted()
    } catch (err) {
      await this.disconnected(connection)
      throw err
    }
    const subscriptions = [this.connectionSubs.add(this.channels.connection(connection.connectionId), connection)]
    if (connection.userId !== undefined) subscriptions.push(this.userSubs.add(this.channels.user(connection.userId), connection))
    const outcomes = await Promise.allSettled(subscriptions)
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
    if (failed !== undefined) {
      await this.disconnected(connection)
      throw failed.reason
    }
    if (this.gone.has(connection)) return
    // Groups it joined meanwhile (from another server, say) are part of its record
    await this.presence.put(connection.connectionId, connection.userId, [...(this.localGroups.get(connection) ?? NO_GROUPS)], true).catch((err: unknown) => { this.presenceFailed(err) })
  }

  async onDisconnected (connection: LifetimeConnection): Promise<void> {
    await this.track(this.disconnected(connection))
  }

  private async disconnected (connection: LifetimeConnection): Promise<void> {
    if (this.gone.has(connection)) return
    this.gone.add(connection)
    this.congestedLocal.delete(connection)
    if (this.local.get(connection.connectionId) === connection) this.local.delete(connection.connectionId)
    const groups = this.localGroups.get(connection) ?? NO_GROUPS
    this.localGroups.delete(connection)
    const work: Array<Promise<unknown>> = [this.connectionSubs.remove(this.channels.connection(connection.connectionId), connection)]
    for (const g of groups) work.push(this.groupSubs.remove(this.channels.group(g), connection))
    if (connection.userId !== undefined) work.push(this.userSubs.remove(this.channels.user(connection.userId), connection))
    work.push(this.presence.removed(connection.connectionId, connection.userId, groups))
    for (const o of await Promise.allSettled(work)) {
      if (o.status === 'rejected') this.log.debug({ err: o.reason }, 'signalr: backplane cleanup of a connection did not reach Redis')
    }
  }

  // -------------------------------------------------------------------------------------
  // Sends

  /** One payload per publish: each protocol's bytes are made once, however many channels it goes to. */
  private payload (message: InvocationMessage, extra: { excluded?: readonly string[], invocationId?: string, returnChannel?: string, policy?: SendPolicy } = {}): Buffer {
    const serialized = new SerializedMessage(message)
    return writeInvocation({ serialized: this.protocols.map((p) => [p.name, serialized.bytesFor(p)] as const), ...extra })
  }

  async send (target: SendTarget, message: InvocationMessage, policy?: SendPolicy): Promise<void> {
    await this.ensureStarted()
    await this.publishSend(target, message, policy)
    // A policy never waits: the receiving servers drop or hold the message for slow readers
    if (policy === undefined) await this.paceToLocalReaders()
  }

  /**
   * A sender on this server waits, as with the in-memory manager, while a local connection
   * that deliveries have made congested drains (never for one that stopped reading). Readers
   * on other servers are not waited for: their own deliveries cannot hold a remote sender.
   */
  private async paceToLocalReaders (): Promise<void> {
    if (this.congestedLocal.size === 0) return
    const waits: Array<Promise<void>> = []
    for (const c of this.congestedLocal) {
      if (c.congested) waits.push(c.drained())
      else this.congestedLocal.delete(c)
    }
    await Promise.all(waits)
  }

  private async publishSend (target: SendTarget, message: InvocationMessage, policy: SendPolicy | undefined): Promise<void> {
    const c = this.channels
    switch (target.kind) {
      case 'all':
        await this.seam.publish(c.all, this.payload(message, { excluded: target.exclude, policy }))
        return
      case 'connections': {
        // A single connection here is written directly, as ASP.NET Core's SendConnectionAsync
        // does (sessions are sticky); Clients(ids) always goes through Redis
        if (target.ids.length === 1) {
          const local = this.local.get(target.ids[0])
          if (local !== undefined) {
            const serialized = new SerializedMessage(message)
            this.writeLocal(local, serialized, policy)
            if (serialized.error !== undefined) throw serialized.error
            return
          }
        }
        const payload = this.payload(message, { policy })
        await Promise.all(target.ids.map(async (id) => await this.seam.publish(c.connection(id), payload)))
        return
      }
      case 'groups': {
        const payload = this.payload(message, { excluded: target.exclude, policy })
        await Promise.all(target.names.map(async (name) => await this.seam.publish(c.group(name), payload)))
        return
      }
      case 'users': {
        const payload = this.payload(message, { policy })
        await Promise.all(target.ids.map(async (id) => await this.seam.publish(c.user(id), payload)))
      }
    }
  }

  private read (channel: string, payload: Buffer): RedisInvocation | undefined {
    try {
      return readInvocation(payload)
    } catch (err) {
      this.log.warn({ err, channel }, 'signalr: an invalid invocation from the backplane was ignored')
      return undefined
    }
  }

  private deliver (channel: string, payload: Buffer, members: Iterable<LifetimeConnection>): void {
    const invocation = this.read(channel, payload)
    if (invocation === undefined) return
    const message = new RemoteMessage(invocation.serialized)
    const excluded = invocation.excluded.length === 0 ? undefined : new Set(invocation.excluded)
    for (const c of members) {
      if (excluded === undefined || !excluded.has(c.connectionId)) this.writeLocal(c, message, invocation.policy)
    }
  }

  private writeLocal (c: LifetimeConnection, message: SerializedMessage, policy?: SendPolicy): void {
    if (c.write(message, policy) && policy === undefined && c.congested) this.congestedLocal.add(c)
  }

  private onConnectionMessage (channel: string, payload: Buffer, members: ReadonlySet<LifetimeConnection>): void {
    const invocation = this.read(channel, payload)
    if (invocation === undefined) return
    for (const c of members) {
      if (invocation.invocationId !== undefined && invocation.returnChannel !== undefined) this.forwardClientResult(c, invocation)
      else this.writeLocal(c, new RemoteMessage(invocation.serialized), invocation.policy)
    }
  }

  // -------------------------------------------------------------------------------------
  // Client results

  async invokeConnection (connectionId: string, method: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    const local = this.local.get(connectionId)
    if (local !== undefined) return await local.invokeClient({ target: method, arguments: args }, timeoutMs)
    await this.ensureStarted()
    // 16 random bytes as 22 base64url characters, unique across servers as ASP.NET Core's are
    const invocationId = randomBytes(16).toString('base64url')
    const payload = this.payload(
      { type: MessageType.Invocation, invocationId, target: method, arguments: args },
      { invocationId, returnChannel: this.channels.returnResultsInPayload }
    )
    const result = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.results.delete(invocationId)) reject(new ClientResultTimeoutError(method, timeoutMs))
      }, timeoutMs)
      this.results.set(invocationId, { resolve, reject, timer, method })
    })
    result.catch(() => {})
    try {
      const receivers = await this.seam.publish(this.channels.connection(connectionId), payload)
      if (receivers < 1) throw new ClientResultError(`Connection '${connectionId}' does not exist.`)
    } catch (err) {
      const w = this.results.get(invocationId)
      if (w !== undefined) {
        clearTimeout(w.timer)
        this.results.delete(invocationId)
      }
      throw err
    }
    return await result
  }

  /** Our connection is asked for a result by another server: ask it, and send the Completion back. */
  private forwardClientResult (connection: LifetimeConnection, invocation: RedisInvocation): void {
    const protocol = connection.protocol
    const invocationId = invocation.invocationId as string
    const returnChannel = this.channels.returnOnWire(invocation.returnChannel as string)
    if (protocol === undefined) return
    const bytes = invocation.serialized.get(protocol.name)
    let call: InvocationMessage | undefined
    try {
      const parsed = bytes === undefined ? undefined : protocol.parse(bytes, 0).messages[0]
      if (parsed?.type === MessageType.Invocation) call = parsed
    } catch (err) {
      this.log.warn({ err }, 'signalr: an invalid client-result invocation from the backplane was ignored')
    }
    const reply = async (completion: CompletionMessage): Promise<void> => {
      await this.seam.publish(returnChannel, writeCompletion({ protocolName: protocol.name, completion: protocol.write(completion) }))
    }
    const work = (call === undefined
      ? Promise.reject(new ClientResultError('This message was received from another server that did not have the requested protocol available.'))
      : connection.invokeClient({ target: call.target, arguments: call.arguments }, this.hub.clientResultTimeout))
      .then(
        async (result) => { await reply({ type: MessageType.Completion, invocationId, result, hasResult: true }) },
        async (err: Error) => {
          // ASP.NET Core's owner answers a disconnect with exactly these words
          // (@fastify/error's instanceof matches by code, and both client-result errors share
          // one: the client's own answer is the one that is also a HubError)
          const disconnected = !(err instanceof HubError) && err.message === `Connection '${connection.connectionId}' disconnected.`
          const error = disconnected ? 'Connection disconnected.' : err.message
          await reply({ type: MessageType.Completion, invocationId, error })
        })
      .catch((err: unknown) => { this.log.warn({ err, invocationId }, 'signalr: a client result could not be sent back over the backplane') })
    void this.track(work)
  }

  private onReturn (payload: Buffer): void {
    let completion: CompletionMessage | undefined
    try {
      const { protocolName, completion: bytes } = readCompletion(payload)
      const protocol = this.hub.protocols.get(protocolName)
      if (protocol === undefined) {
        this.log.warn({ protocol: protocolName }, 'signalr: a client result came back in a protocol this hub does not speak')
        return
      }
      const m = protocol.parse(bytes, 0).messages[0]
      if (m?.type === MessageType.Completion) completion = m
    } catch (err) {
      this.log.warn({ err }, 'signalr: an invalid client result from the backplane was ignored')
      return
    }
    if (completion === undefined) return
    const w = this.results.get(completion.invocationId)
    if (w === undefined) return
    this.results.delete(completion.invocationId)
    clearTimeout(w.timer)
    if (completion.error !== undefined) w.reject(new ClientResultRejectedError(completion.error))
    else w.resolve(completion.result ?? null)
  }

  // -------------------------------------------------------------------------------------
  // Groups

  async addToGroup (connectionId: string, groupName: string): Promise<void> {
    const local = this.local.get(connectionId)
    if (local !== undefined) return await this.track(this.addLocal(local, groupName))
    await this.groupCommand(connectionId, groupName, GroupAction.Add)
  }

  async removeFromGroup (connectionId: string, groupName: string): Promise<void> {
    const local = this.local.get(connectionId)
    if (local !== undefined) return await this.track(this.removeLocal(local, groupName))
    await this.groupCommand(connectionId, groupName, GroupAction.Remove)
  }

  private async addLocal (connection: LifetimeConnection, groupName: string): Promise<void> {
    let groups = this.localGroups.get(connection)
    if (groups?.has(groupName) === true || this.gone.has(connection)) return
    if (groups === undefined) {
      groups = new Set()
      this.localGroups.set(connection, groups)
    }
    groups.add(groupName)
    try {
      await this.groupSubs.add(this.channels.group(groupName), connection)
    } catch (err) {
      groups.delete(groupName)
      if (groups.size === 0 && this.localGroups.get(connection) === groups) this.localGroups.delete(connection)
      throw err
    }
    if (this.gone.has(connection)) {
      // It disconnected while the subscription was being made: undo it
      await this.groupSubs.remove(this.channels.group(groupName), connection).catch(() => {})
      return
    }
    await this.presence.joined(connection.connectionId, connection.userId, [...groups], groupName).catch((err: unknown) => { this.presenceFailed(err) })
  }

  private async removeLocal (connection: LifetimeConnection, groupName: string): Promise<void> {
    const groups = this.localGroups.get(connection)
    if (groups === undefined || !groups.delete(groupName)) return
    if (groups.size === 0) this.localGroups.delete(connection)
    await this.groupSubs.remove(this.channels.group(groupName), connection)
    await this.presence.left(connection.connectionId, connection.userId, [...groups], groupName).catch((err: unknown) => { this.presenceFailed(err) })
  }

  /** The connection is elsewhere (or nowhere): ask its server, and wait for the ack. */
  private async groupCommand (connectionId: string, groupName: string, action: GroupActionValue): Promise<void> {
    await this.ensureStarted()
    this.ackId = this.ackId === 0x7fffffff ? 1 : this.ackId + 1
    const id = this.ackId
    const timeout = this.settings.ackTimeout
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.acks.delete(id)) reject(new BackplaneAckTimeoutError(connectionId, groupName, timeout))
      }, timeout)
      this.acks.set(id, { resolve, reject, timer })
    })
    acked.catch(() => {})
    try {
      await this.seam.publish(this.channels.groupManagement, writeGroupCommand({ id, serverName: this.settings.serverName, action, groupName, connectionId }))
    } catch (err) {
      const w = this.acks.get(id)
      if (w !== undefined) {
        clearTimeout(w.timer)
        this.acks.delete(id)
      }
      throw err
    }
    await acked
  }

  private onGroupCommand (payload: Buffer): void {
    let command
    try {
      command = readGroupCommand(payload)
    } catch (err) {
      this.log.warn({ err }, 'signalr: an invalid group command from the backplane was ignored')
      return
    }
    const connection = this.local.get(command.connectionId)
    if (connection === undefined) return
    const { id, serverName, groupName, action } = command
    const work = (action === GroupAction.Add ? this.addLocal(connection, groupName) : this.removeLocal(connection, groupName))
      .then(async () => { await this.seam.publish(this.channels.ackOf(serverName), writeAck(id)) })
      .catch((err: unknown) => { this.log.warn({ err, groupName }, 'signalr: a group command from another server failed') })
    void this.track(work)
  }

  private onAck (payload: Buffer): void {
    let id: number
    try {
      id = readAck(payload)
    } catch (err) {
      this.log.warn({ err }, 'signalr: an invalid ack from the backplane was ignored')
      return
    }
    const w = this.acks.get(id)
    if (w === undefined) return
    this.acks.delete(id)
    clearTimeout(w.timer)
    w.resolve()
  }

  // -------------------------------------------------------------------------------------
  // Presence and remote close (ours)

  private presenceFailed (err: unknown): void {
    // Written again in full when Redis is back (see the backplane's recovery)
    this.log.debug({ err }, 'signalr: a presence update did not reach Redis')
  }

  async groupMembers (groupName: string): Promise<string[]> {
    await this.ensureStarted()
    return await this.presence.groupMembers(groupName)
  }

  async groupsOf (connectionId: string): Promise<string[]> {
    const local = this.local.get(connectionId)
    if (local !== undefined) return [...(this.localGroups.get(local) ?? NO_GROUPS)]
    await this.ensureStarted()
    return (await this.presence.find(connectionId))?.groups ?? []
  }

  async userConnections (userId: string): Promise<string[]> {
    await this.ensureStarted()
    return await this.presence.userConnections(userId)
  }

  async connections (): Promise<string[]> {
    await this.ensureStarted()
    return await this.presence.connections()
  }

  async connectionCount (): Promise<number> {
    await this.ensureStarted()
    return await this.presence.connectionCount()
  }

  private async localSnapshot (limit: number): Promise<ServerSnapshot> {
    return await this.hub.snapshot?.(limit) ?? { connections: [], connectionCount: 0, messagesReceived: 0, messagesSent: 0 }
  }

  /** Every live fastify-signalr server's share, this one's included; a .NET server keeps no presence. */
  async snapshot (limit: number): Promise<{ reports: Array<{ server: string, snapshot: ServerSnapshot }>, unreachable: number }> {
    await this.ensureStarted()
    const me = this.settings.serverName
    const others = (await this.presence.liveServers()).filter((s) => s !== me)
    const asked = Promise.allSettled(others.map(async (server) => await this.requests.request(server, 'snapshot', [String(limit)], this.settings.commandTimeout)))
    const reports: Array<{ server: string, snapshot: ServerSnapshot }> = [{ server: me, snapshot: await this.localSnapshot(limit) }]
    const answers = await asked
    let unreachable = 0
    answers.forEach((a, i) => {
      const report = a.status === 'fulfilled' ? parseReport(a.value[0]) : undefined
      if (report === undefined) {
        unreachable++
        this.log.debug({ server: others[i], err: a.status === 'rejected' ? a.reason : undefined }, 'signalr: a server gave no snapshot of its connections')
      } else {
        reports.push({ server: others[i], snapshot: report })
      }
    })
    return { reports, unreachable }
  }

  async closeConnection (connectionId: string, options: { error?: Error, allowReconnect?: boolean }): Promise<void> {
    const local = this.local.get(connectionId)
    if (local !== undefined) {
      local.close(options)
      return
    }
    await this.ensureStarted()
    const owner = await this.presence.find(connectionId)
    if (owner === undefined || owner.server === this.settings.serverName) return
    await this.requests.request(owner.server, 'close', [connectionId, options.error?.message ?? '', options.allowReconnect === true ? '1' : '0'], this.settings.commandTimeout)
  }

  // -------------------------------------------------------------------------------------
  // Heartbeat, recovery, shutdown

  async heartbeat (): Promise<void> {
    // A rewrite under way ends with a heartbeat of its own
    if (this.starting === undefined || this.closed || this.rewriting !== undefined) return
    if (!this.presenceStale) {
      await this.presence.heartbeat()
      return
    }
    await this.rewritePresence()
    this.log.info('signalr: presence written back to Redis')
  }

  /** Redis is back: our share of presence may be stale or gone (a restarted Redis keeps nothing). */
  async recovered (): Promise<void> {
    if (this.closed) return
    this.hub.observer?.reconnected()
    if (this.starting === undefined) return
    await this.rewritePresence()
  }

  async close (): Promise<void> {
    if (this.closed) return
    // Disconnects that are still being cleaned up go first (app.close() closes every
    // connection just before this)
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((resolve) => { setTimeout(resolve, this.settings.commandTimeout).unref() })])
    this.closed = true
    const closing = new BackplaneUnavailableError('the hub is closing')
    for (const w of this.acks.values()) { clearTimeout(w.timer); w.reject(closing) }
    this.acks.clear()
    for (const w of this.results.values()) { clearTimeout(w.timer); w.reject(closing) }
    this.results.clear()
    this.requests.close()
    this.forwarding?.close()
    if (this.starting !== undefined && this.seam.ready) {
      await this.presence.withdraw(this).catch((err: unknown) => { this.log.debug({ err }, 'signalr: presence could not be withdrawn from Redis') })
      await Promise.allSettled(this.subscribedChannels().map(async (ch) => { await this.seam.unsubscribe(ch) }))
    }
    this.connectionSubs.clear()
    this.groupSubs.clear()
    this.userSubs.clear()
    this.local.clear()
    this.localGroups.clear()
    this.onClosed(this)
  }
}

/** Another server's share of a snapshot, believed only if it passes the schema. */
function parseReport (json: string | undefined): ServerSnapshot | undefined {
  if (json === undefined) return undefined
  try {
    const value: unknown = JSON.parse(json)
    return ServerSnapshotCheck.Check(value) ? value as ServerSnapshot : undefined
  } catch {
    return undefined
  }
}
