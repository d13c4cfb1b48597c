// A client-to-server stream as the hub method sees it: an AsyncIterable fed by StreamItem
// messages, holding at most `capacity` items. When it is full the dispatcher stops reading
// that connection's messages until the method takes one, which is how ASP.NET Core applies
// StreamBufferCapacity.
import { HubError } from '../errors.js'
import { Fifo } from '../fifo.js'
import type { Validator } from './define-hub.js'
import { validationProblem } from './validation.js'

export class UploadStream implements AsyncIterable<unknown> {
  private readonly items = new Fifo<unknown>()
  private ended = false
  private error: Error | undefined
  private waiter: (() => void) | undefined
  private abandoned = false
  /** Called once the buffer has room again. */
  onSpace: (() => void) | undefined

  constructor (
    private readonly capacity: number,
    private readonly validator: Validator | undefined,
    private readonly label: string
  ) {}

  get full (): boolean {
    return !this.abandoned && !this.ended && this.items.length >= this.capacity
  }

  push (item: unknown): void {
    if (this.ended || this.abandoned) return
    const problem = this.validator === undefined ? undefined : validationProblem(this.validator, item)
    if (problem !== undefined) {
      this.complete(new HubError(`Invalid item for ${this.label}: ${problem}.`))
      return
    }
    this.items.push(this.validator?.fromWire === undefined ? item : this.validator.fromWire(item))
    this.wake()
  }

  /** The client's Completion for this stream id (with an error, or not), or the end of the invocation. */
  complete (error?: Error): void {
    if (this.ended) return
    this.ended = true
    this.error = error
    this.wake()
    this.freeSpace()
  }

  private wake (): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  private freeSpace (): void {
    const cb = this.onSpace
    this.onSpace = undefined
    cb?.()
  }

  async * [Symbol.asyncIterator] (): AsyncIterator<unknown> {
    try {
      while (true) {
        if (this.items.length > 0) {
          const item = this.items.shift()
          this.freeSpace()
          yield item
          continue
        }
        if (this.ended) {
          if (this.error !== undefined) throw this.error
          return
        }
        await new Promise<void>((resolve) => { this.waiter = resolve })
      }
    } finally {
      // The method stopped reading (break, throw or return): later items are dropped
      // rather than left to fill the buffer and stall the connection
      this.abandoned = true
      this.items.clear()
      this.freeSpace()
    }
  }
}
