// The one seam over the two Node Redis clients, node-redis (`redis` 5/6) and ioredis (5/6):
// publish, subscribe, unsubscribe and plain commands, each bounded in time, and the state
// of both connections (the application's client for commands and publishes, and our own
// subscriber made from it with duplicate()). Nothing above this file knows which client it
// runs on. Every call fails with FST_SIGNALR_BACKPLANE_UNAVAILABLE at once while a
// connection is known to be down, and after `timeoutMs` when Redis does not answer.
import { EventEmitter } from 'node:events'
import { BackplaneUnavailableError } from '../../errors.js'
import type { BackplaneFailure } from '../hub-lifetime-manager.js'

type Listener = (...args: never[]) => void

/** What we use of a node-redis client (RedisClientType, v5 and v6). */
export interface NodeRedisLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  duplicate (): NodeRedisLike
  connect (): Promise<unknown>
  sendCommand (args: ReadonlyArray<string | Buffer>): Promise<unknown>
  publish (channel: string, message: Buffer): Promise<number>
  subscribe (channel: string, listener: (message: Buffer, channel: Buffer) => void, bufferMode: true): Promise<void>
  unsubscribe (channel: string, listener?: (message: Buffer, channel: Buffer) => void, bufferMode?: true): Promise<void>
  close?: () => Promise<void>
  quit?: () => Promise<unknown>
  destroy?: () => void
  disconnect?: () => Promise<void> | void
  on (event: string, listener: Listener): unknown
  off (event: string, listener: Listener): unknown
}

/** What we use of an ioredis client (Redis, v5 and v6). */
export interface IoRedisLike {
  readonly status: string
  duplicate (): IoRedisLike
  call (command: string, args: Array<string | Buffer | number>): Promise<unknown>
  publish (channel: string, message: Buffer): Promise<number>
  subscribe (...channels: string[]): Promise<unknown>
  unsubscribe (...channels: string[]): Promise<unknown>
  quit (): Promise<unknown>
  disconnect (): void
  on (event: string, listener: Listener): unknown
  off (event: string, listener: Listener): unknown
}

export type RedisClientLike = NodeRedisLike | IoRedisLike

export function isIoRedis (c: unknown): c is IoRedisLike {
  return typeof c === 'object' && c !== null && typeof (c as IoRedisLike).call === 'function' &&
    typeof (c as IoRedisLike).status === 'string' && typeof (c as IoRedisLike).duplicate === 'function'
}

export function isNodeRedis (c: unknown): c is NodeRedisLike {
  return typeof c === 'object' && c !== null && typeof (c as NodeRedisLike).sendCommand === 'function' &&
    typeof (c as NodeRedisLike).duplicate === 'function' && 'isReady' in c
}

export type SeamEvent = 'down' | 'up'

// Why a seam call failed, kept on the error it throws so that the observer counts failures
// by a bounded reason without parsing messages
const kFailure = Symbol('fastify-signalr.backplane-failure')
type Tagged = Error & { [kFailure]?: BackplaneFailure }

function failing (reason: BackplaneFailure, what: string): Error {
  const err: Tagged = new BackplaneUnavailableError(what)
  err[kFailure] = reason
  return err
}

/** The reason a seam call failed with `err`: 'error' for anything the seam did not make. */
export function failureOf (err: unknown): BackplaneFailure {
  return (err as Tagged | undefined)?.[kFailure] ?? 'error'
}

export interface RedisSeam {
  readonly kind: 'node-redis' | 'ioredis'
  /** Both connections are up. */
  readonly ready: boolean
  /** Resolves once the subscriber is connected (or rejects after the timeout). */
  start (): Promise<void>
  /** The number of subscribers that received it (PUBLISH's answer). */
  publish (channel: string, payload: Buffer): Promise<number>
  subscribe (channel: string, onMessage: (payload: Buffer) => void): Promise<void>
  unsubscribe (channel: string): Promise<void>
  /** A command on the application's client; replies as the client gives them (strings, numbers, arrays, null). */
  command (args: Array<string | Buffer>): Promise<unknown>
  on (event: SeamEvent, listener: (why: string) => void): void
  /** Closes the subscriber (the application's client stays the application's). */
  close (): Promise<void>
}

abstract class BaseSeam extends EventEmitter implements RedisSeam {
  abstract readonly kind: 'node-redis' | 'ioredis'
  private wasReady = false
  /** Set once a connection was lost, so that coming up at start is not reported as a recovery. */
  private lost = false
  private closed = false
  protected readonly handlers = new Map<string, (payload: Buffer) => void>()
  private readonly detach: Array<() => void> = []

  constructor (protected readonly timeoutMs: number) {
    super()
  }

  abstract get ready (): boolean
  abstract start (): Promise<void>
  protected abstract doPublish (channel: string, payload: Buffer): Promise<number>
  protected abstract doSubscribe (channel: string): Promise<void>
  protected abstract doUnsubscribe (channel: string): Promise<void>
  protected abstract doCommand (args: Array<string | Buffer>): Promise<unknown>
  protected abstract doClose (): Promise<void>

  /** Listens to a connection's state events; errors are only observed (the client reconnects). */
  protected watch (client: { on (e: string, l: Listener): unknown, off (e: string, l: Listener): unknown }, which: string, events: string[]): void {
    for (const event of events) {
      const listener = ((err?: unknown): void => { this.changed(`${which} ${event}${err instanceof Error ? `: ${err.message}` : ''}`) }) as Listener
      client.on(event, listener)
      this.detach.push(() => { client.off(event, listener) })
    }
  }

  protected changed (why: string): void {
    if (this.closed) return
    const now = this.ready
    if (now === this.wasReady) return
    this.wasReady = now
    if (!now) {
      this.lost = true
      this.emit('down', why)
    } else if (this.lost) {
      this.lost = false
      this.emit('up', why)
    }
  }

  protected dispatch (channel: string, payload: Buffer): void {
    this.handlers.get(channel)?.(payload)
  }

  private async bounded<T> (what: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) throw failing('unavailable', `${what}: the backplane is closed`)
    if (!this.ready) throw failing('unavailable', `${what}: not connected to Redis`)
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        work(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(failing('timeout', `${what}: Redis did not answer within ${this.timeoutMs}ms`)) }, this.timeoutMs)
        })
      ])
    } catch (err) {
      if ((err as { code?: string }).code === 'FST_SIGNALR_BACKPLANE_UNAVAILABLE') throw err
      throw failing('error', `${what}: ${(err as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
  }

  async publish (channel: string, payload: Buffer): Promise<number> {
    return await this.bounded('PUBLISH', async () => await this.doPublish(channel, payload))
  }

  async subscribe (channel: string, onMessage: (payload: Buffer) => void): Promise<void> {
    this.handlers.set(channel, onMessage)
    try {
      await this.bounded('SUBSCRIBE', async () => { await this.doSubscribe(channel) })
    } catch (err) {
      // A subscription that failed is undone, so that a later reconnect does not restore it
      this.handlers.delete(channel)
      this.doUnsubscribe(channel).catch(() => {})
      throw err
    }
  }

  async unsubscribe (channel: string): Promise<void> {
    if (!this.handlers.delete(channel) || this.closed) return
    // While Redis is down the client still forgets the channel, so it is not restored on
    // reconnect; the command itself is not waited for
    if (!this.ready) {
      this.doUnsubscribe(channel).catch(() => {})
      return
    }
    await this.bounded('UNSUBSCRIBE', async () => { await this.doUnsubscribe(channel) })
  }

  async command (args: Array<string | Buffer>): Promise<unknown> {
    return await this.bounded(String(args[0]), async () => await this.doCommand(args))
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.handlers.clear()
    for (const d of this.detach) d()
    this.removeAllListeners()
    await this.doClose()
  }
}

class NodeRedisSeam extends BaseSeam {
  readonly kind = 'node-redis' as const
  private readonly subscriber: NodeRedisLike
  private readonly listener = (message: Buffer, channel: Buffer): void => { this.dispatch(channel.toString(), message) }
  private connecting: Promise<unknown> | undefined

  constructor (private readonly client: NodeRedisLike, timeoutMs: number) {
    super(timeoutMs)
    this.subscriber = client.duplicate()
    this.watch(client, 'client', ['ready', 'end', 'error', 'reconnecting'])
    this.watch(this.subscriber, 'subscriber', ['ready', 'end', 'error', 'reconnecting'])
  }

  get ready (): boolean {
    return this.client.isReady && this.subscriber.isReady
  }

  async start (): Promise<void> {
    this.connecting ??= this.subscriber.connect()
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([this.connecting, new Promise((_resolve, reject) => {
        timer = setTimeout(() => { reject(new BackplaneUnavailableError(`the subscriber did not connect within ${this.timeoutMs}ms`)) }, this.timeoutMs)
      })])
    } finally {
      clearTimeout(timer)
    }
    this.changed('started')
  }

  protected async doPublish (channel: string, payload: Buffer): Promise<number> {
    return await this.client.publish(channel, payload)
  }

  protected async doSubscribe (channel: string): Promise<void> {
    await this.subscriber.subscribe(channel, this.listener, true)
  }

  protected async doUnsubscribe (channel: string): Promise<void> {
    await this.subscriber.unsubscribe(channel, this.listener, true)
  }

  protected async doCommand (args: Array<string | Buffer>): Promise<unknown> {
    return await this.client.sendCommand(args)
  }

  protected async doClose (): Promise<void> {
    const s = this.subscriber
    if (!s.isOpen) {
      // Never connected, or reconnecting: stop it trying
      if (typeof s.destroy === 'function') s.destroy()
      else await s.disconnect?.()
      return
    }
    try {
      if (typeof s.close === 'function') await s.close()
      else await s.quit?.()
    } catch {
      if (typeof s.destroy === 'function') s.destroy()
      else await s.disconnect?.()
    }
  }
}

class IoRedisSeam extends BaseSeam {
  readonly kind = 'ioredis' as const
  private readonly subscriber: IoRedisLike
  private readonly listener = (channel: Buffer, message: Buffer): void => { this.dispatch(channel.toString(), message) }

  constructor (private readonly client: IoRedisLike, timeoutMs: number) {
    super(timeoutMs)
    this.subscriber = client.duplicate()
    this.subscriber.on('messageBuffer', this.listener as Listener)
    this.watch(client, 'client', ['ready', 'close', 'end', 'error', 'reconnecting'])
    this.watch(this.subscriber, 'subscriber', ['ready', 'close', 'end', 'error', 'reconnecting'])
  }

  get ready (): boolean {
    return this.client.status === 'ready' && this.subscriber.status === 'ready'
  }

  async start (): Promise<void> {
    const end = Date.now() + this.timeoutMs
    // duplicate() connects by itself (unless the client was made lazyConnect)
    if (this.subscriber.status === 'wait') (this.subscriber as unknown as { connect: () => Promise<void> }).connect().catch(() => {})
    while (this.subscriber.status !== 'ready') {
      if (Date.now() > end) throw new BackplaneUnavailableError(`the subscriber did not connect within ${this.timeoutMs}ms`)
      await new Promise((resolve) => { setTimeout(resolve, 10) })
    }
    this.changed('started')
  }

  protected async doPublish (channel: string, payload: Buffer): Promise<number> {
    return await this.client.publish(channel, payload)
  }

  protected async doSubscribe (channel: string): Promise<void> {
    await this.subscriber.subscribe(channel)
  }

  protected async doUnsubscribe (channel: string): Promise<void> {
    await this.subscriber.unsubscribe(channel)
  }

  protected async doCommand (args: Array<string | Buffer>): Promise<unknown> {
    return await this.client.call(String(args[0]), args.slice(1))
  }

  protected async doClose (): Promise<void> {
    this.subscriber.off('messageBuffer', this.listener as Listener)
    if (this.subscriber.status !== 'ready') {
      this.subscriber.disconnect()
      return
    }
    try {
      await this.subscriber.quit()
    } catch {
      this.subscriber.disconnect()
    }
  }
}

export function createSeam (client: RedisClientLike, timeoutMs: number): RedisSeam {
  return isIoRedis(client) ? new IoRedisSeam(client, timeoutMs) : new NodeRedisSeam(client, timeoutMs)
}
