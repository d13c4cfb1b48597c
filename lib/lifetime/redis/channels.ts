// Channel and key names. The ASP.NET Core ones are spelled exactly as
// Microsoft.AspNetCore.SignalR.StackExchangeRedis spells them (RedisChannels.cs), with
// StackExchange.Redis's ChannelPrefix concatenated in front as it does, so Node and .NET
// servers of one hub share them. Everything we add beyond ASP.NET Core (presence, requests
// between our servers) lives under `{hub}:fastify-signalr:`, which no .NET server reads.
import type { BackplaneChannelKind } from '../hub-lifetime-manager.js'

const INTERNAL_KINDS: Readonly<Record<string, BackplaneChannelKind>> = { groups: 'group_management', ack: 'ack', return: 'return' }

export class RedisChannels {
  /** What goes on the wire before every name: ChannelPrefix + hub name. */
  private readonly wire: string
  readonly all: string
  readonly groupManagement: string
  readonly ack: string
  readonly returnResults: string
  /**
   * The return channel as it travels inside a client-result invocation: without the
   * ChannelPrefix, because StackExchange.Redis adds it when the owner publishes to it.
   */
  readonly returnResultsInPayload: string
  /** Ours: requests and replies between fastify-signalr servers, addressed to one server. */
  readonly requests: string

  constructor (readonly channelPrefix: string, readonly hubName: string, readonly serverName: string) {
    this.wire = channelPrefix + hubName
    this.all = `${this.wire}:all`
    this.groupManagement = `${this.wire}:internal:groups`
    this.ack = this.ackOf(serverName)
    this.returnResultsInPayload = `${hubName}:internal:return:${serverName}`
    this.returnResults = channelPrefix + this.returnResultsInPayload
    this.requests = this.requestsOf(serverName)
  }

  connection (connectionId: string): string {
    return `${this.wire}:connection:${connectionId}`
  }

  group (groupName: string): string {
    return `${this.wire}:group:${groupName}`
  }

  user (userId: string): string {
    return `${this.wire}:user:${userId}`
  }

  ackOf (serverName: string): string {
    return `${this.wire}:internal:ack:${serverName}`
  }

  /** A return channel read from a payload, as it is published on the wire. */
  returnOnWire (returnChannel: string): string {
    return this.channelPrefix + returnChannel
  }

  requestsOf (serverName: string): string {
    return `${this.wire}:fastify-signalr:server:${serverName}`
  }

  /**
   * The kind of a channel this hub publishes on, for metrics: channel names carry ids and
   * group names, which are unbounded; their kind is not.
   */
  kindOf (channel: string): BackplaneChannelKind {
    if (!channel.startsWith(this.wire + ':')) return 'return' // another hub's return channel: client results only
    const [first, second = ''] = channel.slice(this.wire.length + 1).split(':', 2)
    if (first === 'all' || first === 'connection' || first === 'group' || first === 'user') return first
    if (first === 'internal') return INTERNAL_KINDS[second] ?? 'group_management'
    return second === 'server' ? 'server_request' : 'forward'
  }

  /** Presence keys (ours): see presence.ts. */
  key (...parts: string[]): string {
    return `${this.wire}:fastify-signalr:${parts.join(':')}`
  }
}
