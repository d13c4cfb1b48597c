// Property tests with fast-check, fixed seeds and bounded runs:
// (a) random and mutated frames thrown at both codecs' parse(): a parse result or an
//     FST_SIGNALR_ error, never a TypeError/RangeError or a hang;
// (b) whatever our writer writes parses back equal, in one piece, batched, or split anywhere;
// (c) random frames thrown at live WebSocket connections: the process and a control
//     connection carry on.
import fc from 'fast-check'
import { test } from 'tap'
import Type from 'typebox'
import WebSocket from 'ws'
import { defineHub } from '../index.js'
import type { HubProtocol } from '../lib/protocol/hub-protocol.js'
import { jsonHubProtocol } from '../lib/protocol/json.js'
import type { HubMessage } from '../lib/protocol/messages.js'
import { messagePackHubProtocol } from '../lib/protocol/msgpack.js'
import { startServer } from './fixtures/server.js'
import { echoes, handshake, HANDSHAKE_OK, open, openWebSocket, negotiate, type Protocol } from './fixtures/wire.js'

const SEED = 20_260_611
const codecs: Record<Protocol, HubProtocol> = { json: jsonHubProtocol, messagepack: messagePackHubProtocol }

// ---------------------------------------------------------------------------------------------
// Arbitrary valid messages, in the normal form our readers return

function hasProtoKey (v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false
  if (Object.hasOwn(v, '__proto__')) return true
  return Object.values(v).some(hasProtoKey)
}

const text = fc.string({ unit: 'grapheme', maxLength: 12 })
const nonEmpty = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
// The MessagePack reader (and the official client's) refuses a '__proto__' map key: see the
// hostile-input tests. Values here stay clear of it
const jsonValue = fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }).filter((v) => !hasProtoKey(v))
const mpValue = fc.oneof(
  { weight: 4, arbitrary: jsonValue },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.date({ noInvalidDate: true, min: new Date(-1e14), max: new Date(1e14) }) }
)
const headers = fc.option(fc.dictionary(nonEmpty, nonEmpty, { minKeys: 1, maxKeys: 3, noNullPrototype: false })
  .filter((h) => !Object.hasOwn(h, '__proto__')), { nil: undefined })
const id = nonEmpty
const seq = fc.maxSafeNat()

function messages (value: fc.Arbitrary<unknown>): fc.Arbitrary<HubMessage> {
  const args = fc.array(value, { maxLength: 4 })
  const streamIds = fc.option(fc.array(nonEmpty, { minLength: 1, maxLength: 3 }), { nil: undefined })
  return fc.oneof(
    fc.record({ type: fc.constant(1 as const), headers, invocationId: fc.option(id, { nil: undefined }), target: nonEmpty, arguments: args, streamIds }),
    fc.record({ type: fc.constant(2 as const), headers, invocationId: id, item: value }),
    fc.record({ type: fc.constant(3 as const), headers, invocationId: id, error: text }),
    fc.record({ type: fc.constant(3 as const), headers, invocationId: id, result: value, hasResult: fc.constant(true) }),
    fc.record({ type: fc.constant(3 as const), headers, invocationId: id, hasResult: fc.constant(false) }),
    fc.record({ type: fc.constant(4 as const), headers, invocationId: id, target: nonEmpty, arguments: args, streamIds }),
    fc.record({ type: fc.constant(5 as const), headers, invocationId: id }),
    fc.constant({ type: 6 as const }),
    fc.record({ type: fc.constant(7 as const), error: fc.option(nonEmpty, { nil: undefined }), allowReconnect: fc.boolean() }),
    fc.record({ type: fc.constant(8 as const), sequenceId: seq }),
    fc.record({ type: fc.constant(9 as const), sequenceId: seq })
  ) as fc.Arbitrary<HubMessage>
}

const arbitraryMessages: Record<Protocol, fc.Arbitrary<HubMessage>> = { json: messages(jsonValue), messagepack: messages(mpValue) }

/** Drops keys whose value is undefined, and maps JSON's lossy spots (-0) the way a round trip does. */
function normal (protocol: Protocol, m: HubMessage): unknown {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(m)) if (v !== undefined) out[k] = v
  if (protocol === 'json') return JSON.parse(JSON.stringify(out))
  return out
}

// ---------------------------------------------------------------------------------------------
// Mutations of valid frames

type Mutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'truncate', at: number }
  | { kind: 'splice', at: number, bytes: Uint8Array }
  | { kind: 'delete', at: number, count: number }
  | { kind: 'set', at: number, byte: number }
  | { kind: 'random', bytes: Uint8Array }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  // The bytes that matter most to the framings and the decoders
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0x00, 0x1e, 0x22, 0x5b, 0x7b, 0x7f, 0x80, 0x90, 0xc0, 0xc1, 0xc7, 0xd4, 0xdc, 0xdd, 0xde, 0xdf, 0xff) }),
  fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 64 }) })
)

function mutate (data: Buffer, m: Mutation): Buffer {
  const at = data.length === 0 ? 0 : ('at' in m ? m.at % (data.length + 1) : 0)
  switch (m.kind) {
    case 'flip': {
      if (data.length === 0) return data
      const out = Buffer.from(data)
      out[at % data.length] ^= 1 << m.bit
      return out
    }
    case 'truncate': return data.subarray(0, at)
    case 'splice': return Buffer.concat([data.subarray(0, at), m.bytes, data.subarray(at)])
    case 'delete': return Buffer.concat([data.subarray(0, at), data.subarray(at + m.count)])
    case 'set': {
      if (data.length === 0) return Buffer.from([m.byte])
      const out = Buffer.from(data)
      out[at % data.length] = m.byte
      return out
    }
    case 'random': return Buffer.from(m.bytes)
  }
}

function frameOf (protocol: Protocol): fc.Arbitrary<Buffer> {
  const codec = codecs[protocol]
  const valid = fc.array(arbitraryMessages[protocol], { minLength: 1, maxLength: 3 })
    .map((ms) => Buffer.concat(ms.map((m) => codec.write(m))))
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }).map((s) => Buffer.from(s + '\u001e')) },
    { weight: 1, arbitrary: fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.integer({ min: -2, max: 12 })).map(([v, type]) => Buffer.from(JSON.stringify(typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...v, type } : v) + '\u001e')) },
    { weight: 6, arbitrary: fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([b, ms]) => ms.reduce(mutate, b)) }
  )
}

const LIMITS = [0, 16, 64, 1024, 32_768]
const unexpected: string[] = []

/** The only allowed outcomes: a sane result, or an FST_SIGNALR_ error. */
function parseSafely (protocol: Protocol, data: Buffer, max: number): boolean {
  const started = performance.now()
  try {
    const { messages, consumed } = codecs[protocol].parse(data, max)
    if (!Number.isInteger(consumed) || consumed < 0 || consumed > data.length) throw new Error(`consumed ${consumed} of ${data.length}`)
    for (const m of messages) if (!Number.isInteger(m.type) || m.type < 1 || m.type > 9) throw new Error(`message of type ${m.type}`)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (typeof code !== 'string' || !code.startsWith('FST_SIGNALR_')) {
      unexpected.push(`${protocol} ${data.toString('hex')} (max ${max}): ${(err as Error).name}: ${(err as Error).message}`)
      return false
    }
  }
  const ms = performance.now() - started
  if (ms > 250) {
    unexpected.push(`${protocol} ${data.toString('hex')} (max ${max}): took ${ms.toFixed(0)}ms`)
    return false
  }
  return true
}

for (const protocol of ['json', 'messagepack'] as const) {
  test(`${protocol}: random and mutated frames parse or fail with an FST_SIGNALR_ error`, async (t) => {
    unexpected.length = 0
    const runs = 4000
    fc.assert(fc.property(frameOf(protocol), fc.constantFrom(...LIMITS), (data, max) => parseSafely(protocol, data, max)), { seed: SEED, numRuns: runs })
    t.same(unexpected, [], `${runs} frames: nothing but parse results and FST_SIGNALR_ errors`)
  })

  test(`${protocol}: every message our writer writes parses back equal, batched and split anywhere`, async (t) => {
    const codec = codecs[protocol]
    let checked = 0
    fc.assert(fc.property(fc.array(arbitraryMessages[protocol], { minLength: 1, maxLength: 4 }), fc.nat(), (ms, cut) => {
      const bytes = Buffer.concat(ms.map((m) => codec.write(m)))
      const whole = codec.parse(bytes, 0)
      if (whole.consumed !== bytes.length) return false
      const expected = ms.map((m) => normal(protocol, m))
      t.same(whole.messages.map((m) => normal(protocol, m)), expected)
      // Split at any byte: the first part yields whole messages only, the rest completes them
      const at = cut % (bytes.length + 1)
      const first = codec.parse(bytes.subarray(0, at), 0)
      const second = codec.parse(bytes.subarray(first.consumed), 0)
      if (first.consumed + second.consumed !== bytes.length) return false
      t.same([...first.messages, ...second.messages].map((m) => normal(protocol, m)), expected)
      checked++
      return true
    }), { seed: SEED, numRuns: 400 })
    t.equal(checked, 400)
  })
}

test('the maximum message size is enforced for any limit, and never below it', async (t) => {
  for (const protocol of ['json', 'messagepack'] as const) {
    const codec = codecs[protocol]
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: 1, max: 400 }), (s, max) => {
      const bytes = codec.write({ type: 1, target: 'T', arguments: [s] })
      // The message body is what counts: the record separator or the VarInt prefix is framing
      const body = protocol === 'json' ? bytes.length - 1 : bytes.length - (bytes.length - 1 > 127 ? 2 : 1)
      try {
        codec.parse(bytes, max)
        return body <= max
      } catch (err) {
        return (err as { code?: string }).code === 'FST_SIGNALR_MESSAGE_TOO_LARGE' && body > max
      }
    }), { seed: SEED, numRuns: 500 })
    t.pass(`${protocol}: limit checked on 500 sizes`)
  }
})

// ---------------------------------------------------------------------------------------------
// Live connections

const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], handler: (_ctx, s) => s },
    Add: { args: [Type.Integer(), Type.Integer()], handler: (_ctx, a, b) => a + b },
    Counter: {
      args: [Type.Integer({ minimum: 0, maximum: 20 })],
      stream: Type.Integer(),
      async * handler (_ctx, n) { for (let i = 0; i < n; i++) yield i }
    },
    Sum: {
      args: [],
      uploads: [Type.Number()],
      async handler (_ctx, numbers) {
        let sum = 0
        for await (const n of numbers) sum += n
        return sum
      }
    }
  }
})

/** Frames a live connection can get: valid calls of the hub above, their mutations, noise. */
function liveFrame (protocol: Protocol): fc.Arbitrary<{ data: Buffer, binary: boolean }> {
  const codec = codecs[protocol]
  const target = fc.constantFrom('Echo', 'Add', 'Counter', 'Sum', 'echo', 'Missing')
  const call = fc.oneof(
    fc.record({ type: fc.constant(1 as const), invocationId: fc.option(fc.constantFrom('1', '2', '3'), { nil: undefined }), target, arguments: fc.array(fc.oneof(fc.integer({ min: 0, max: 30 }), text), { maxLength: 3 }), streamIds: fc.option(fc.constant(['s1']), { nil: undefined }) }),
    fc.record({ type: fc.constant(4 as const), invocationId: fc.constantFrom('1', '2', '3'), target, arguments: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 2 }) }),
    fc.record({ type: fc.constant(2 as const), invocationId: fc.constantFrom('s1', 's2'), item: fc.oneof(fc.integer(), text) }),
    fc.record({ type: fc.constant(3 as const), invocationId: fc.constantFrom('s1', 's2', '1'), hasResult: fc.constant(false) }),
    fc.record({ type: fc.constant(5 as const), invocationId: fc.constantFrom('1', '2', '3') }),
    fc.constant({ type: 6 as const }),
    arbitraryMessages[protocol]
  ) as fc.Arbitrary<HubMessage>
  const valid = call.map((m) => codec.write(m))
  // Mostly valid frames, so that a batch gets some way before a bad one ends the connection
  const bytes = fc.oneof(
    { weight: 8, arbitrary: valid },
    { weight: 2, arbitrary: fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 2 })).map(([b, ms]) => ms.reduce(mutate, b)) },
    { weight: 1, arbitrary: frameOf(protocol) }
  )
  // Mostly the frame type the protocol uses; sometimes the other one
  return fc.record({ data: bytes, binary: fc.oneof({ weight: 12, arbitrary: fc.constant(protocol === 'messagepack') }, { weight: 1, arbitrary: fc.boolean() }) })
}

test('random frames at live WebSocket connections: the process survives and a control connection still works', async (t) => {
  const { app, base } = await startServer(t, { hub, path: '/hubs/fuzz', plugin: { maximumReceiveMessageSize: 4096 } })
  const control = await open('ws', base, '/hubs/fuzz', { protocol: 'messagepack' })
  t.teardown(() => { control.destroy() })
  const codes = new Map<number | string, number>()
  let frames = 0
  for (const protocol of ['json', 'messagepack'] as const) {
    await fc.assert(fc.asyncProperty(fc.array(liveFrame(protocol), { minLength: 5, maxLength: 20 }), async (batch) => {
      const neg = await negotiate(base, '/hubs/fuzz')
      const c = await openWebSocket(`${base.replace('http', 'ws')}/hubs/fuzz?id=${neg.connectionToken}`, protocol)
      await c.send(handshake(protocol), { frame: 'text' })
      if (!(await c.next()).equals(HANDSHAKE_OK)) return false
      const ws = c.ws
      for (const f of batch) {
        if (ws.readyState !== WebSocket.OPEN) break
        ws.send(f.data, { binary: f.binary })
        frames++
      }
      // A ping round trip: the server has handled every frame before it (or closed the socket)
      await new Promise<void>((resolve) => {
        if (ws.readyState !== WebSocket.OPEN) { resolve(); return }
        ws.ping()
        ws.once('pong', () => { resolve() })
        ws.once('close', () => { resolve() })
      })
      const open = ws.readyState === WebSocket.OPEN
      if (open) ws.close(1000)
      const { code } = await c.ended(5000)
      const key = open ? 'still open' : code ?? 0
      codes.set(key, (codes.get(key) ?? 0) + 1)
      // The server ends a connection with 1000 after its Close message, 1007 for invalid
      // UTF-8 in a text frame: nothing else
      return open || code === 1000 || code === 1007
    }), { seed: SEED, numRuns: 15 })
  }
  t.comment(`${frames} frames on 30 connections; endings: ${JSON.stringify(Object.fromEntries(codes))}`)
  t.ok(frames >= 200, `at least 200 frames thrown (${frames})`)
  t.ok(await echoes(control, 'still here'), 'the control connection still echoes')
  const end = Date.now() + 3000
  while (app.signalr.connectionCount > 1 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(app.signalr.connectionCount, 1, 'every fuzzed connection left the registry')
})
