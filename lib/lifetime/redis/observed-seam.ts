// One hub's view of the shared seam, counting what the hub publishes and what fails, by
// channel kind and reason, for its BackplaneObserver. Every part of a hub's manager
// (sends, group commands, server requests, presence, forwarding) talks to Redis through it.
import type { BackplaneObserver } from '../hub-lifetime-manager.js'
import type { RedisChannels } from './channels.js'
import { failureOf, type RedisSeam, type SeamEvent } from './seam.js'

class ObservedSeam implements RedisSeam {
  constructor (private readonly seam: RedisSeam, private readonly channels: RedisChannels, private readonly observer: BackplaneObserver) {}

  get kind (): RedisSeam['kind'] { return this.seam.kind }
  get ready (): boolean { return this.seam.ready }

  async start (): Promise<void> { await this.seam.start() }

  async publish (channel: string, payload: Buffer): Promise<number> {
    try {
      const receivers = await this.seam.publish(channel, payload)
      this.observer.published(this.channels.kindOf(channel))
      return receivers
    } catch (err) {
      this.observer.failed('publish', failureOf(err))
      throw err
    }
  }

  async subscribe (channel: string, onMessage: (payload: Buffer) => void): Promise<void> {
    try {
      await this.seam.subscribe(channel, onMessage)
    } catch (err) {
      this.observer.failed('subscribe', failureOf(err))
      throw err
    }
  }

  async unsubscribe (channel: string): Promise<void> { await this.seam.unsubscribe(channel) }

  async command (args: Array<string | Buffer>): Promise<unknown> {
    try {
      return await this.seam.command(args)
    } catch (err) {
      this.observer.failed('command', failureOf(err))
      throw err
    }
  }

  on (event: SeamEvent, listener: (why: string) => void): void { this.seam.on(event, listener) }
  async close (): Promise<void> { await this.seam.close() }
}

/** The seam as `observer` sees it; the seam itself when nothing observes. */
export function observedSeam (seam: RedisSeam, channels: RedisChannels, observer: BackplaneObserver | undefined): RedisSeam {
  return observer === undefined ? seam : new ObservedSeam(seam, channels, observer)
}
