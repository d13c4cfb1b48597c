// The backplane payloads, byte for byte as Microsoft.AspNetCore.SignalR.StackExchangeRedis
// writes them (RedisProtocol.cs, signalr-wire.md §9.2): MessagePack arrays written with
// MessagePack-CSharp's compact forms (fixint/fixstr/fixarray first, then the 8-, 16- and
// 32-bit forms). Pure: bytes in, values out. Readers follow the .NET ones: minimum lengths
// are checked, extra items are ignored, and anything malformed throws
// FST_SIGNALR_INVALID_MESSAGE without reading past the payload.
import { InvalidMessageError } from '../../errors.js'
import type { SendPolicy } from '../hub-lifetime-manager.js'

export const GroupAction = { Add: 1, Remove: 2 } as const
export type GroupActionValue = typeof GroupAction[keyof typeof GroupAction]

export interface RedisInvocation {
  /** Connection ids that must not receive it (AllExcept, GroupExcept, Others...). */
  excluded: string[]
  /** Protocol name -> the fully framed hub message in that protocol. */
  serialized: Map<string, Buffer>
  /** Client results only: the invocation id and the (unprefixed) channel the Completion goes back on. */
  invocationId?: string
  returnChannel?: string
  /**
   * Ours, not ASP.NET Core's: a send's backpressure policy, as a fifth item after a nil
   * invocation id and return channel. .NET servers read the first four items and ignore the
   * rest, so their connections get the message as a plain send.
   */
  policy?: SendPolicy
}

/** The fifth item's first element. */
const POLICY_VOLATILE = 1
const POLICY_LATEST = 2

export interface RedisGroupCommand {
  id: number
  serverName: string
  action: GroupActionValue
  groupName: string
  connectionId: string
}

export interface RedisCompletion {
  protocolName: string
  /** The framed Completion, in that protocol. */
  completion: Buffer
}

// ---------------------------------------------------------------------------------------
// Writing: sizes first, then one Buffer written in place

class Writer {
  private readonly parts: Array<Buffer | string | number> = []
  private size = 0

  arrayHeader (n: number): this {
    if (n < 16) return this.byte(0x90 | n)
    if (n < 0x10000) return this.head(0xdc, n, 2)
    return this.head(0xdd, n, 4)
  }

  mapHeader (n: number): this {
    if (n < 16) return this.byte(0x80 | n)
    if (n < 0x10000) return this.head(0xde, n, 2)
    return this.head(0xdf, n, 4)
  }

  str (s: string): this {
    const n = Buffer.byteLength(s)
    if (n < 32) this.byte(0xa0 | n)
    else if (n < 0x100) this.head(0xd9, n, 1)
    else if (n < 0x10000) this.head(0xda, n, 2)
    else this.head(0xdb, n, 4)
    this.parts.push(s)
    this.size += n
    return this
  }

  bin (b: Buffer): this {
    const n = b.length
    if (n < 0x100) this.head(0xc4, n, 1)
    else if (n < 0x10000) this.head(0xc5, n, 2)
    else this.head(0xc6, n, 4)
    this.parts.push(b)
    this.size += n
    return this
  }

  /** MessagePackWriter.Write(int): the smallest form that holds the value. */
  int (v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`not an Int32: ${v}`)
    if (v >= 0) {
      if (v < 0x80) return this.byte(v)
      if (v < 0x100) return this.head(0xcc, v, 1)
      if (v < 0x10000) return this.head(0xcd, v, 2)
      return this.head(0xce, v, 4)
    }
    if (v >= -32) return this.byte(v & 0xff)
    if (v >= -0x80) return this.head(0xd0, v & 0xff, 1)
    if (v >= -0x8000) return this.head(0xd1, v & 0xffff, 2)
    return this.head(0xd2, v >>> 0, 4)
  }

  nil (): this {
    return this.byte(0xc0)
  }

  private byte (b: number): this {
    this.parts.push(Buffer.of(b))
    this.size += 1
    return this
  }

  private head (marker: number, value: number, bytes: 1 | 2 | 4): this {
    const b = Buffer.allocUnsafe(1 + bytes)
    b[0] = marker
    if (bytes === 1) b[1] = value
    else if (bytes === 2) b.writeUInt16BE(value, 1)
    else b.writeUInt32BE(value, 1)
    this.parts.push(b)
    this.size += b.length
    return this
  }

  toBuffer (): Buffer {
    const out = Buffer.allocUnsafe(this.size)
    let at = 0
    for (const p of this.parts) {
      if (typeof p === 'string') at += out.write(p, at)
      else if (typeof p === 'number') out[at++] = p
      else {
        p.copy(out, at)
        at += p.length
      }
    }
    return out
  }
}

/**
 * An invocation for the all, connection, group and user channels: 2 items, or 4 for a client
 * result. `serialized` holds one framed message per protocol, in the order given.
 */
export function writeInvocation (o: {
  serialized: Iterable<readonly [string, Buffer]>
  excluded?: readonly string[]
  invocationId?: string
  returnChannel?: string
  policy?: SendPolicy
}): Buffer {
  const w = new Writer()
  const clientResult = o.returnChannel !== undefined && o.returnChannel !== ''
  const policy = clientResult ? undefined : o.policy
  w.arrayHeader(policy !== undefined ? 5 : clientResult ? 4 : 2)
  const excluded = o.excluded ?? []
  w.arrayHeader(excluded.length)
  for (const id of excluded) w.str(id)
  const entries = [...o.serialized]
  w.mapHeader(entries.length)
  for (const [name, bytes] of entries) w.str(name).bin(bytes)
  if (clientResult) w.str(o.invocationId ?? '').str(o.returnChannel as string)
  if (policy !== undefined) {
    w.nil().nil()
    if (policy.kind === 'volatile') w.arrayHeader(1).int(POLICY_VOLATILE)
    else w.arrayHeader(2).int(POLICY_LATEST).str(policy.key)
  }
  return w.toBuffer()
}

export function writeGroupCommand (c: RedisGroupCommand): Buffer {
  return new Writer().arrayHeader(5).int(c.id).str(c.serverName).int(c.action).str(c.groupName).str(c.connectionId).toBuffer()
}

export function writeAck (id: number): Buffer {
  return new Writer().arrayHeader(1).int(id).toBuffer()
}

export function writeCompletion (c: RedisCompletion): Buffer {
  return new Writer().arrayHeader(2).str(c.protocolName).bin(c.completion).toBuffer()
}

/** Our own messages between fastify-signalr servers: an array of strings and Int32s. */
export function writeTuple (items: ReadonlyArray<string | number>): Buffer {
  const w = new Writer().arrayHeader(items.length)
  for (const item of items) {
    if (typeof item === 'number') w.int(item)
    else w.str(item)
  }
  return w.toBuffer()
}

// ---------------------------------------------------------------------------------------
// Reading

class Reader {
  private at = 0
  constructor (private readonly b: Buffer, private readonly kind: string) {}

  private fail (what: string): never {
    throw new InvalidMessageError(`Invalid backplane ${this.kind} payload: ${what}.`)
  }

  private need (n: number): void {
    if (this.at + n > this.b.length) this.fail('truncated')
  }

  private u8 (): number {
    this.need(1)
    return this.b[this.at++]
  }

  private uint (bytes: 1 | 2 | 4): number {
    this.need(bytes)
    const v = bytes === 1 ? this.b[this.at] : bytes === 2 ? this.b.readUInt16BE(this.at) : this.b.readUInt32BE(this.at)
    this.at += bytes
    return v
  }

  peek (): number | undefined {
    return this.b[this.at]
  }

  arrayHeader (): number {
    const m = this.u8()
    if ((m & 0xf0) === 0x90) return m & 0x0f
    if (m === 0xdc) return this.uint(2)
    if (m === 0xdd) return this.uint(4)
    return this.fail('an array was expected')
  }

  mapHeader (): number {
    const m = this.u8()
    if ((m & 0xf0) === 0x80) return m & 0x0f
    if (m === 0xde) return this.uint(2)
    if (m === 0xdf) return this.uint(4)
    return this.fail('a map was expected')
  }

  /** A str (nil reads as undefined, as MessagePackReader.ReadString returns null). */
  str (): string | undefined {
    const m = this.u8()
    let n: number
    if ((m & 0xe0) === 0xa0) n = m & 0x1f
    else if (m === 0xd9) n = this.uint(1)
    else if (m === 0xda) n = this.uint(2)
    else if (m === 0xdb) n = this.uint(4)
    else if (m === 0xc0) return undefined
    else return this.fail('a string was expected')
    this.need(n)
    const s = this.b.toString('utf8', this.at, this.at + n)
    this.at += n
    return s
  }

  requiredStr (): string {
    return this.str() ?? this.fail('a string was expected, not nil')
  }

  /** A view of the payload: no copy. */
  bin (): Buffer {
    const m = this.u8()
    let n: number
    if (m === 0xc4) n = this.uint(1)
    else if (m === 0xc5) n = this.uint(2)
    else if (m === 0xc6) n = this.uint(4)
    else if (m === 0xc0) return Buffer.alloc(0)
    else return this.fail('binary data was expected')
    this.need(n)
    const out = this.b.subarray(this.at, this.at + n)
    this.at += n
    return out
  }

  int (): number {
    const m = this.u8()
    if (m < 0x80) return m
    if (m >= 0xe0) return m - 0x100
    switch (m) {
      case 0xcc: return this.uint(1)
      case 0xcd: return this.uint(2)
      case 0xce: {
        const v = this.uint(4)
        return v > 0x7fffffff ? this.fail('an Int32 was expected') : v
      }
      case 0xd0: { const v = this.uint(1); return v > 0x7f ? v - 0x100 : v }
      case 0xd1: { const v = this.uint(2); return v > 0x7fff ? v - 0x10000 : v }
      case 0xd2: { const v = this.uint(4); return v > 0x7fffffff ? v - 0x100000000 : v }
      default: return this.fail('an integer was expected')
    }
  }

  minimum (count: number, n: number): number {
    if (count < n) this.fail(`insufficient items (${count}, at least ${n} expected)`)
    return count
  }

  /** Counts above what the payload could hold are refused before anything is allocated. */
  plausible (count: number, minBytesEach: number): number {
    if (count * minBytesEach > this.b.length - this.at) this.fail('a count larger than the payload')
    return count
  }
}

export function readInvocation (payload: Buffer): RedisInvocation {
  const r = new Reader(payload, 'invocation')
  const length = r.minimum(r.arrayHeader(), 2)
  const excludedCount = r.plausible(r.arrayHeader(), 1)
  const excluded: string[] = []
  for (let i = 0; i < excludedCount; i++) excluded.push(r.requiredStr())
  const mapCount = r.plausible(r.mapHeader(), 2)
  const serialized = new Map<string, Buffer>()
  for (let i = 0; i < mapCount; i++) {
    const name = r.requiredStr()
    serialized.set(name, r.bin())
  }
  const out: RedisInvocation = { excluded, serialized }
  if (length > 3) {
    out.invocationId = r.str()
    out.returnChannel = r.str()
  }
  if (length > 4) {
    // A policy kind we do not know (a newer server's) is delivered as a plain send
    const items = r.minimum(r.arrayHeader(), 1)
    const kind = r.int()
    if (kind === POLICY_VOLATILE) out.policy = { kind: 'volatile' }
    else if (kind === POLICY_LATEST && items >= 2) out.policy = { kind: 'latest', key: r.requiredStr() }
  }
  return out
}

export function readGroupCommand (payload: Buffer): RedisGroupCommand {
  const r = new Reader(payload, 'group command')
  r.minimum(r.arrayHeader(), 5)
  const id = r.int()
  const serverName = r.requiredStr()
  const action = r.int()
  if (action !== GroupAction.Add && action !== GroupAction.Remove) throw new InvalidMessageError(`Invalid backplane group command payload: unknown action ${action}.`)
  return { id, serverName, action, groupName: r.requiredStr(), connectionId: r.requiredStr() }
}

export function readAck (payload: Buffer): number {
  const r = new Reader(payload, 'ack')
  r.minimum(r.arrayHeader(), 1)
  return r.int()
}

export function readCompletion (payload: Buffer): RedisCompletion {
  const r = new Reader(payload, 'completion')
  r.minimum(r.arrayHeader(), 2)
  return { protocolName: r.requiredStr(), completion: r.bin() }
}

export function readTuple (payload: Buffer, minimum: number): Array<string | number | undefined> {
  const r = new Reader(payload, 'request')
  const n = r.plausible(r.minimum(r.arrayHeader(), minimum), 1)
  const out: Array<string | number | undefined> = []
  for (let i = 0; i < n; i++) out.push(isIntMarker(r.peek()) ? r.int() : r.str())
  return out
}

function isIntMarker (m: number | undefined): boolean {
  return m !== undefined && (m < 0x80 || m >= 0xe0 || (m >= 0xcc && m <= 0xce) || (m >= 0xd0 && m <= 0xd2))
}
