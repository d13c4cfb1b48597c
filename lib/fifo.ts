// A first-in first-out queue whose take() costs O(1). Array.prototype.shift() moves every
// element that remains, so draining a queue of n items with it costs O(n²): one message of
// 349,000 Pings once held the event loop for 15 s that way.

export class Fifo<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get length (): number {
    return this.items.length - this.head
  }

  push (item: T): void {
    this.items.push(item)
  }

  /** The oldest item, left in place. */
  peek (): T | undefined {
    return this.items[this.head]
  }

  shift (): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    // The slot is cleared so that a taken item is not kept alive by the queue
    this.items[this.head++] = undefined
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      // Reclaim the consumed front once it is at least half the array: amortised O(1)
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  clear (): void {
    this.items = []
    this.head = 0
  }

  * [Symbol.iterator] (): Iterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T
  }
}
