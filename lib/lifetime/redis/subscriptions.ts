// Reference-counted subscriptions (ASP.NET Core's RedisSubscriptionManager): a channel is
// subscribed while it has at least one local member and unsubscribed when the last one
// leaves. Changes to one channel run one after another, so a join racing a leave always
// ends in the state of the last call, and an entry with no members and nothing pending is
// dropped: churn over many group names leaves nothing behind.
import type { RedisSeam } from './seam.js'

interface Entry<T> {
  readonly members: Set<T>
  subscribed: boolean
  /** The chain of subscribe/unsubscribe steps for this channel. */
  tail: Promise<void>
  pending: number
}

export class SubscriptionTable<T> {
  private readonly entries = new Map<string, Entry<T>>()

  constructor (
    private readonly seam: RedisSeam,
    /** Called for each message on a channel of this table, with its members at that moment. */
    private readonly onMessage: (channel: string, payload: Buffer, members: ReadonlySet<T>) => void
  ) {}

  members (channel: string): ReadonlySet<T> | undefined {
    return this.entries.get(channel)?.members
  }

  get size (): number {
    return this.entries.size
  }

  /** Channels currently subscribed (for resubscription checks and leak tests). */
  channels (): string[] {
    const out: string[] = []
    for (const [channel, e] of this.entries) if (e.subscribed) out.push(channel)
    return out
  }

  /** Adds a member; resolves once the channel is subscribed. On failure the member is not added. */
  async add (channel: string, member: T): Promise<void> {
    const e = this.entry(channel)
    e.members.add(member)
    try {
      await this.reconcile(channel, e)
    } catch (err) {
      e.members.delete(member)
      this.dropIfIdle(channel, e)
      throw err
    }
  }

  /** Removes a member; resolves once the channel is unsubscribed if it was the last one. */
  async remove (channel: string, member: T): Promise<void> {
    const e = this.entries.get(channel)
    if (e === undefined || !e.members.delete(member)) return
    await this.reconcile(channel, e)
  }

  private entry (channel: string): Entry<T> {
    let e = this.entries.get(channel)
    if (e === undefined) {
      e = { members: new Set(), subscribed: false, tail: Promise.resolve(), pending: 0 }
      this.entries.set(channel, e)
    }
    return e
  }

  private async reconcile (channel: string, e: Entry<T>): Promise<void> {
    e.pending++
    const step = e.tail.then(async () => {
      const wanted = e.members.size > 0
      if (wanted && !e.subscribed) {
        await this.seam.subscribe(channel, (payload) => { this.onMessage(channel, payload, e.members) })
        e.subscribed = true
      } else if (!wanted && e.subscribed) {
        e.subscribed = false
        await this.seam.unsubscribe(channel)
      }
    })
    // The chain goes on whatever this step did; the caller sees its own step's outcome
    e.tail = step.catch(() => {})
    try {
      await step
    } finally {
      e.pending--
      this.dropIfIdle(channel, e)
    }
  }

  private dropIfIdle (channel: string, e: Entry<T>): void {
    if (e.pending === 0 && e.members.size === 0 && !e.subscribed && this.entries.get(channel) === e) this.entries.delete(channel)
  }

  /** Forgets every entry (the seam is closing and drops its subscriptions itself). */
  clear (): void {
    this.entries.clear()
  }
}
