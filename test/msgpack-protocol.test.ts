import { test } from 'tap'
import { NullLogger } from '@microsoft/signalr'
import type { HubMessage as ClientHubMessage } from '@microsoft/signalr'
import { MessagePackHubProtocol as ClientMessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { readFrames, writeVarIntFrame } from '../lib/protocol/binary-framing.js'
import { messagePackHubProtocol as protocol, MessagePackHubProtocol } from '../lib/protocol/msgpack.js'
import type { HubMessage } from '../lib/protocol/messages.js'

const INVALID = { code: 'FST_SIGNALR_INVALID_MESSAGE' }
const TOO_LARGE = { code: 'FST_SIGNALR_MESSAGE_TOO_LARGE' }

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').replace(/(..)(?!$)/g, '$1 ')
}

function bytes (spaced: string): Buffer {
  return Buffer.from(spaced.replace(/\s+/g, ''), 'hex')
}

/** A frame around a body given in hex. */
function framed (bodyHex: string): Buffer {
  return writeVarIntFrame(bytes(bodyHex))
}

function parseAll (data: Buffer, max = 0): HubMessage[] {
  const result = protocol.parse(data, max)
  return result.messages
}

function parseOne (data: Buffer): HubMessage {
  const result = protocol.parse(data, 0)
  if (result.messages.length !== 1 || result.consumed !== data.length) {
    throw new Error(`expected one whole message, got ${result.messages.length} (consumed ${result.consumed}/${data.length})`)
  }
  return result.messages[0]
}

const client = new ClientMessagePackHubProtocol()

function clientWrite (message: ClientHubMessage): Buffer {
  return Buffer.from(client.writeMessage(message))
}

function clientParse (data: Buffer): ClientHubMessage[] {
  // The client insists on a real ArrayBuffer holding exactly the input
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
  return client.parseMessages(ab as ArrayBuffer, NullLogger.instance)
}

test('protocol identity', async (t) => {
  t.equal(protocol.name, 'messagepack')
  t.equal(protocol.version, 2)
  t.equal(protocol.transferFormat, 'Binary')
  t.ok(protocol instanceof MessagePackHubProtocol)
})

test('reads the JS client invocation bytes', async (t) => {
  const m = parseOne(bytes('0e 95 01 80 a1 30 a4 45 63 68 6f 91 a2 68 69'))
  t.strictSame(m, { type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] })
})

test('reads a non-blocking invocation (nil id) with a map argument', async (t) => {
  const m = parseOne(bytes('0f 95 01 80 c0 a4 46 69 72 65 92 01 81 a1 61 02'))
  t.strictSame(m, { type: 1, target: 'Fire', arguments: [1, { a: 2 }] })
  t.notOk('invocationId' in m)
})

test('an empty-string invocationId is non-blocking too', async (t) => {
  const m = parseOne(framed('95 01 80 a0 a1 4d 90'))
  t.strictSame(m, { type: 1, target: 'M', arguments: [] })
})

test('reads a 6-item invocation with streamIds', async (t) => {
  // [1, {}, "0", "Upload", [], ["1"]]
  const m = parseOne(framed('96 01 80 a1 30 a6 55 70 6c 6f 61 64 90 91 a1 31'))
  t.strictSame(m, { type: 1, invocationId: '0', target: 'Upload', arguments: [], streamIds: ['1'] })
  // an empty streamIds array (what .NET writes) and nil both mean none
  t.strictSame(parseOne(framed('96 01 80 a1 30 a1 4d 90 90')), { type: 1, invocationId: '0', target: 'M', arguments: [] })
  t.strictSame(parseOne(framed('96 01 80 a1 30 a1 4d 90 c0')), { type: 1, invocationId: '0', target: 'M', arguments: [] })
})

test('reads a StreamInvocation, 5 and 6 items', async (t) => {
  t.strictSame(parseOne(framed('95 04 80 a1 32 a5 43 6f 75 6e 74 91 03')),
    { type: 4, invocationId: '2', target: 'Count', arguments: [3] })
  t.strictSame(parseOne(framed('96 04 80 a1 32 a5 43 6f 75 6e 74 91 03 91 a1 33')),
    { type: 4, invocationId: '2', target: 'Count', arguments: [3], streamIds: ['3'] })
})

test('reads headers into a null-prototype object', async (t) => {
  const m = parseOne(framed('95 01 81 a1 61 a1 62 c0 a1 4d 90'))
  t.equal(m.type, 1)
  if (m.type !== 1) return
  t.same(m.headers, { a: 'b' })
  t.equal(Object.getPrototypeOf(m.headers), null)
})

test('headers read back are written back unchanged', async (t) => {
  const input = framed('94 02 82 a1 61 a1 62 a1 63 a1 64 a1 31 01')
  const m = parseOne(input)
  t.equal(hex(protocol.write(m)), hex(input))
})

test('reads StreamItem, CancelInvocation, Ping, Ack, Sequence', async (t) => {
  t.strictSame(parseOne(framed('94 02 80 a1 31 2a')), { type: 2, invocationId: '1', item: 42 })
  t.strictSame(parseOne(framed('94 02 80 a1 31 c0')), { type: 2, invocationId: '1', item: null })
  t.strictSame(parseOne(framed('93 05 80 a1 31')), { type: 5, invocationId: '1' })
  t.strictSame(parseOne(bytes('02 91 06')), { type: 6 })
  t.strictSame(parseOne(framed('92 08 05')), { type: 8, sequenceId: 5 })
  // any unsigned width
  t.strictSame(parseOne(framed('92 09 cd 01 2c')), { type: 9, sequenceId: 300 })
  t.strictSame(parseOne(framed('92 09 cf 00 00 00 01 00 00 00 00')), { type: 9, sequenceId: 2 ** 32 })
})

test('reads the three Completion kinds', async (t) => {
  t.strictSame(parseOne(framed('95 03 80 a1 30 01 a4 62 6f 6f 6d')), { type: 3, invocationId: '0', error: 'boom' })
  t.strictSame(parseOne(framed('94 03 80 a1 30 02')), { type: 3, invocationId: '0', hasResult: false })
  t.strictSame(parseOne(framed('95 03 80 a1 30 03 2a')), { type: 3, invocationId: '0', result: 42, hasResult: true })
  t.strictSame(parseOne(framed('95 03 80 a1 30 03 c0')), { type: 3, invocationId: '0', result: null, hasResult: true })
})

test('reads Close with and without allowReconnect', async (t) => {
  t.strictSame(parseOne(bytes('03 92 07 c0')), { type: 7, allowReconnect: false })
  t.strictSame(parseOne(framed('93 07 a1 78 c3')), { type: 7, error: 'x', allowReconnect: true })
  // an empty error string is still an error
  t.strictSame(parseOne(framed('92 07 a0')), { type: 7, error: '', allowReconnect: false })
})

test('extra trailing items are ignored', async (t) => {
  t.strictSame(parseOne(framed('97 01 80 a1 30 a1 4d 90 90 01')), { type: 1, invocationId: '0', target: 'M', arguments: [] })
  t.strictSame(parseOne(framed('92 06 01')), { type: 6 })
  t.strictSame(parseOne(framed('94 07 c0 c3 01')), { type: 7, allowReconnect: true })
  t.strictSame(parseOne(framed('95 02 80 a1 31 01 02')), { type: 2, invocationId: '1', item: 1 })
  t.strictSame(parseOne(framed('95 03 80 a1 30 02 01')), { type: 3, invocationId: '0', hasResult: false })
  t.strictSame(parseOne(framed('93 08 01 02')), { type: 8, sequenceId: 1 })
})

test('unknown message types are skipped, not errors', async (t) => {
  // read counts them: a frame of unknown messages uses up a slice like any other
  t.strictSame(protocol.parse(framed('91 0a'), 0), { messages: [], consumed: 3, read: 1 })
  t.strictSame(protocol.parse(framed('93 63 01 02'), 0), { messages: [], consumed: 5, read: 1 })
  t.strictSame(protocol.parse(framed('91 00'), 0), { messages: [], consumed: 3, read: 1 })
  const data = Buffer.concat([bytes('02 91 06'), framed('91 0a'), bytes('02 91 06')])
  t.strictSame(protocol.parse(data, 0), { messages: [{ type: 6 }, { type: 6 }], consumed: data.length, read: 3 })
})

test('several frames in one buffer, and a partial frame at the end', async (t) => {
  const a = bytes('0e 95 01 80 a1 30 a4 45 63 68 6f 91 a2 68 69')
  const b = bytes('02 91 06')
  const c = bytes('03 92 07 c0')
  const all = Buffer.concat([a, b, c])
  t.strictSame(protocol.parse(all, 0), {
    messages: [{ type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] }, { type: 6 }, { type: 7, allowReconnect: false }],
    consumed: all.length,
    read: 3
  })
  // at most maxMessages are read; the rest stays unconsumed for the next slice
  t.strictSame(protocol.parse(all, 0, 2), { messages: [{ type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] }, { type: 6 }], consumed: a.length + b.length, read: 2 })
  // every cut point: only whole frames are consumed
  for (let cut = 0; cut <= all.length; cut++) {
    const result = protocol.parse(all.subarray(0, cut), 0)
    const whole = [0, a.length, a.length + b.length, all.length].filter((n) => n <= cut).pop()
    t.equal(result.consumed, whole, `cut at ${cut}`)
    t.equal(result.messages.length, [0, a.length, a.length + b.length, all.length].indexOf(whole as number))
  }
  // fed byte by byte, the way a slow transport might deliver it
  let pending = Buffer.alloc(0)
  const got: HubMessage[] = []
  for (const byte of all) {
    pending = Buffer.concat([pending, Buffer.from([byte])])
    const result = protocol.parse(pending, 0)
    got.push(...result.messages)
    pending = pending.subarray(result.consumed)
  }
  t.equal(got.length, 3)
  t.equal(pending.length, 0)
})

test('writes each message kind with the .NET server layout', async (t) => {
  const cases: Array<[HubMessage, string]> = [
    // non-blocking invocation: nil id, always 6 items, empty streamIds
    [{ type: 1, target: 'Send', arguments: ['a'] }, '0d 96 01 80 c0 a4 53 65 6e 64 91 a1 61 90'],
    [{ type: 1, invocationId: '', target: 'Send', arguments: ['a'] }, '0d 96 01 80 c0 a4 53 65 6e 64 91 a1 61 90'],
    // client-result invocation with an id
    [{ type: 1, invocationId: 's0', target: 'Get', arguments: [] }, '0c 96 01 80 a2 73 30 a3 47 65 74 90 90'],
    [{ type: 1, headers: { a: 'b' }, target: 'M', arguments: [null], streamIds: ['1'] }, '0f 96 01 81 a1 61 a1 62 c0 a1 4d 91 c0 91 a1 31'],
    [{ type: 4, invocationId: '2', target: 'Count', arguments: [3] }, '0e 96 04 80 a1 32 a5 43 6f 75 6e 74 91 03 90'],
    [{ type: 2, invocationId: '1', item: 42 }, '06 94 02 80 a1 31 2a'],
    [{ type: 2, invocationId: '1', item: undefined }, '06 94 02 80 a1 31 c0'],
    [{ type: 2, invocationId: '1', item: Buffer.from([1, 2]) }, '09 94 02 80 a1 31 c4 02 01 02'],
    [{ type: 3, invocationId: '0', error: 'boom' }, '0b 95 03 80 a1 30 01 a4 62 6f 6f 6d'],
    [{ type: 3, invocationId: '0', hasResult: false }, '06 94 03 80 a1 30 02'],
    [{ type: 3, invocationId: '0' }, '06 94 03 80 a1 30 02'],
    [{ type: 3, invocationId: '0', result: 42, hasResult: true }, '07 95 03 80 a1 30 03 2a'],
    // a void hub method: hasResult with no value is a nil result, as .NET's WithResult(null)
    [{ type: 3, invocationId: '0', hasResult: true }, '07 95 03 80 a1 30 03 c0'],
    [{ type: 3, invocationId: '0', result: null, hasResult: true }, '07 95 03 80 a1 30 03 c0'],
    [{ type: 5, invocationId: '1' }, '05 93 05 80 a1 31'],
    [{ type: 6 }, '02 91 06'],
    [{ type: 7 }, '04 93 07 c0 c2'],
    [{ type: 7, error: '' }, '04 93 07 c0 c2'],
    [{ type: 7, error: 'x', allowReconnect: true }, '05 93 07 a1 78 c3'],
    [{ type: 8, sequenceId: 5 }, '03 92 08 05'],
    [{ type: 9, sequenceId: 300 }, '05 92 09 cd 01 2c']
  ]
  for (const [message, expected] of cases) {
    t.equal(hex(protocol.write(message)), expected, JSON.stringify(message))
  }
})

test('writes a large value with a multi-byte length prefix', async (t) => {
  const item = 'x'.repeat(200)
  const out = protocol.write({ type: 2, invocationId: '1', item })
  // body: 94 02 80 a1 31 d9 c8 + 200 bytes = 207 = 0xcf -> VarInt cf 01
  t.equal(hex(out.subarray(0, 9)), 'cf 01 94 02 80 a1 31 d9 c8')
  t.equal(out.length, 2 + 207)
  t.strictSame(parseOne(out), { type: 2, invocationId: '1', item })
})

test('VarInt boundaries', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '00'], [1, '01'], [127, '7f'], [128, '80 01'], [16383, 'ff 7f'], [16384, '80 80 01'], [2097151, 'ff ff 7f'], [2097152, '80 80 80 01']
  ]
  for (const [size, prefix] of cases) {
    const body = Buffer.alloc(size, 0xab)
    const frame = writeVarIntFrame(body)
    const prefixLength = frame.length - size
    t.equal(hex(frame.subarray(0, prefixLength)), prefix, `prefix for ${size}`)
    const seen: Buffer[] = []
    t.equal(readFrames(frame, 0, (b) => seen.push(b)), frame.length)
    t.equal(seen.length, 1)
    t.ok(seen[0].equals(body), `body for ${size}`)
    // one byte short: nothing consumed
    t.equal(readFrames(frame.subarray(0, frame.length - 1), 0, () => t.fail('no frame expected')), 0)
  }
  // 2^31-1 is the largest length: accepted as a prefix, waits for the body
  t.equal(readFrames(bytes('ff ff ff ff 07'), 0, () => t.fail('no frame expected')), 0)
  t.equal(readFrames(bytes('ff ff ff ff 07 00 01 02'), 0, () => t.fail('no frame expected')), 0)
  // a 5th byte above 7 is refused, with or without its continuation bit
  t.throws(() => readFrames(bytes('ff ff ff ff 08'), 0, () => {}), { ...INVALID, message: 'Messages bigger than 2GB are not supported.' })
  t.throws(() => readFrames(bytes('80 80 80 80 80 01'), 0, () => {}), { ...INVALID, message: 'Messages bigger than 2GB are not supported.' })
  t.throws(() => protocol.parse(bytes('ff ff ff ff 0f'), 0), INVALID)
  // an incomplete VarInt is just not there yet
  t.equal(readFrames(bytes('80'), 0, () => t.fail('no frame expected')), 0)
  t.equal(readFrames(bytes('ff ff ff ff'), 0, () => t.fail('no frame expected')), 0)
  t.equal(readFrames(Buffer.alloc(0), 0, () => t.fail('no frame expected')), 0)
})

test('a declared length above the limit fails before the body arrives', async (t) => {
  // 2^31-1 declared, no body at all
  t.throws(() => protocol.parse(bytes('ff ff ff ff 07'), 32768), { ...TOO_LARGE, message: 'The maximum message size of 32768B was exceeded.' })
  // 101 declared with limit 100: only the prefix has arrived
  t.throws(() => protocol.parse(bytes('65'), 100), TOO_LARGE)
  t.throws(() => protocol.parse(bytes('80 01'), 100), TOO_LARGE)
  // a frame after a good one is still checked
  t.throws(() => protocol.parse(Buffer.concat([bytes('02 91 06'), bytes('80 01')]), 100), TOO_LARGE)
  // exactly the limit is fine, whole or partial
  const body = Buffer.concat([bytes('94 02 80 a1 31 da 00 5f'), Buffer.alloc(95, 0x61)])
  t.equal(body.length, 103)
  const frame = writeVarIntFrame(body)
  t.equal(protocol.parse(frame, 103).messages.length, 1)
  t.strictSame(protocol.parse(frame.subarray(0, 10), 103), { messages: [], consumed: 0, read: 0 })
  t.throws(() => protocol.parse(frame.subarray(0, 10), 102), TOO_LARGE)
  // 0 means unlimited
  t.equal(protocol.parse(frame, 0).messages.length, 1)
})

test('malformed messages throw FST_SIGNALR_INVALID_MESSAGE', async (t) => {
  const cases: Array<[string, string]> = [
    ['', 'empty body'],
    ['01', 'not an array'],
    ['81 a1 61 01', 'a map, not an array'],
    ['90', 'empty array'],
    ['92 a1 31 80', 'string type'],
    ['92 cb 3f f8 00 00 00 00 00 00 80', 'fractional type'],
    ['91 c0', 'nil type'],
    ['94 01 80 c0 a1 4d', 'Invocation with 4 items'],
    ['95 01 80 c0 01 90', 'Invocation target not a string'],
    ['95 01 80 c0 a0 90', 'Invocation empty target'],
    ['95 01 80 c0 c0 90', 'Invocation nil target'],
    ['95 01 80 c0 a1 4d 01', 'Invocation arguments not an array'],
    ['95 01 80 c0 a1 4d 80', 'Invocation arguments a map'],
    ['95 01 80 c0 a1 4d c0', 'Invocation arguments nil'],
    ['95 01 80 01 a1 4d 90', 'Invocation id an integer'],
    ['95 01 c0 c0 a1 4d 90', 'headers nil'],
    ['95 01 90 c0 a1 4d 90', 'headers an array'],
    ['95 01 a1 61 c0 a1 4d 90', 'headers a string'],
    ['95 01 81 a1 61 01 c0 a1 4d 90', 'header value an integer'],
    ['95 01 81 a1 61 a0 c0 a1 4d 90', 'header value empty'],
    ['95 01 81 a0 a1 62 c0 a1 4d 90', 'header name empty'],
    ['95 01 81 a1 61 c0 c0 a1 4d 90', 'header value nil'],
    ['96 01 80 c0 a1 4d 90 01', 'streamIds not an array'],
    ['96 01 80 c0 a1 4d 90 91 01', 'streamIds holding an integer'],
    ['96 01 80 c0 a1 4d 90 91 a0', 'streamIds holding an empty string'],
    ['95 04 80 c0 a1 4d 90', 'StreamInvocation nil id'],
    ['95 04 80 a0 a1 4d 90', 'StreamInvocation empty id'],
    ['94 04 80 a1 30 a1 4d', 'StreamInvocation with 4 items'],
    ['93 02 80 a1 30', 'StreamItem with 3 items'],
    ['94 02 80 c0 01', 'StreamItem nil id'],
    ['93 03 80 a1 30', 'Completion with 3 items'],
    ['95 03 80 a1 30 04 c0', 'Completion unknown result kind'],
    ['95 03 80 a1 30 a1 31 c0', 'Completion result kind a string'],
    ['94 03 80 a1 30 01', 'Completion error kind without error'],
    ['94 03 80 a1 30 03', 'Completion result kind without result'],
    ['95 03 80 a1 30 01 01', 'Completion error not a string'],
    ['95 03 80 a1 30 01 c0', 'Completion error nil'],
    ['94 03 80 c0 02', 'Completion nil id'],
    ['92 05 80', 'CancelInvocation with 2 items'],
    ['93 05 80 c0', 'CancelInvocation nil id'],
    ['91 07', 'Close with 1 item'],
    ['92 07 01', 'Close error an integer'],
    ['93 07 c0 01', 'Close allowReconnect an integer'],
    ['93 07 c0 c0', 'Close allowReconnect nil'],
    ['91 08', 'Ack without sequenceId'],
    ['92 08 ff', 'Ack negative'],
    ['92 08 cb 3f f8 00 00 00 00 00 00', 'Ack fractional'],
    ['92 09 a1 31', 'Sequence a string'],
    ['92 09 cf 00 20 00 00 00 00 00 00', 'Sequence beyond 2^53'],
    ['91 06 91 06', 'two values in one frame'],
    ['92 06', 'truncated array'],
    ['95 01 80 c0 a4 45 63', 'truncated string'],
    ['c1', 'the never-used byte'],
    ['a2 ff fe', 'a bare string']
  ]
  for (const [body, why] of cases) {
    t.throws(() => protocol.parse(framed(body), 0), INVALID, why)
  }
  t.throws(() => protocol.parse(framed('95 01 80 c0 a1 4d 01'), 0), { message: 'Invalid payload for Invocation message: arguments must be an array.' })
  t.throws(() => protocol.parse(framed('94 01 80 c0 a1 4d'), 0), { message: 'Invalid payload for Invocation message.' })
  t.throws(() => protocol.parse(framed('01'), 0), { message: /MessagePack array/ })
  t.throws(() => protocol.parse(framed('92 06'), 0), { message: 'Error reading MessagePack: an array declares 2 elements but only 1 bytes remain.' })
  t.throws(() => protocol.parse(framed('93 c0 91 c0'), 0), { message: 'Error reading MessagePack: the message ends inside a value.' })
  t.throws(() => protocol.parse(framed('91 06 91 06'), 0), { message: 'Error reading MessagePack: extra 2 byte(s) after the message.' })
  t.throws(() => protocol.parse(framed(''), 0), { message: 'Invalid payload: empty message.' })
  // a bad frame after good ones still fails the whole read: the connection ends anyway
  t.throws(() => protocol.parse(Buffer.concat([bytes('02 91 06'), framed('90')]), 0), INVALID)
})

test('a __proto__ map key cannot reach a prototype, and flags its message for an error answer', async (t) => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort()
  // arguments: [{"__proto__": {"polluted": true}}]
  const proto = 'a9 5f 5f 70 72 6f 74 6f 5f 5f'
  const cases = [
    `95 01 80 c0 a1 4d 91 81 ${proto} 81 a8 70 6f 6c 6c 75 74 65 64 c3`,
    // the same key nested deeper, and as a header name
    `95 01 80 c0 a1 4d 91 81 a1 61 81 ${proto} 80`,
    `95 01 81 ${proto} a1 62 c0 a1 4d 90`
  ]
  for (const body of cases) {
    const m = parseOne(framed(body))
    if (m.type !== 1) return t.fail('expected an Invocation')
    t.equal(m.forbiddenKey, '__proto__', 'the message is flagged, so the dispatcher answers it with an error')
    t.notOk(JSON.stringify(m.arguments).includes('__proto__'), 'the key itself is gone from what was decoded')
  }
  // a string value (not a key) spelled __proto__ is just a string
  const plain = parseOne(framed(`95 01 80 c0 a1 4d 91 ${proto}`))
  if (plain.type !== 1) return t.fail('expected an Invocation')
  t.equal(plain.forbiddenKey, undefined)
  t.strictSame(plain.arguments, ['__proto__'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.strictSame(Object.getOwnPropertyNames(Object.prototype).sort(), before)

  // other special names stay plain own properties: [{"constructor": 1, "prototype": 2}]
  const m = parseOne(framed('95 01 80 c0 a1 4d 91 82 ab 63 6f 6e 73 74 72 75 63 74 6f 72 01 a9 70 72 6f 74 6f 74 79 70 65 02'))
  if (m.type !== 1) return t.fail('expected an Invocation')
  const arg = m.arguments[0] as Record<string, unknown>
  t.ok(Object.hasOwn(arg, 'constructor'))
  t.equal(arg.constructor, 1)
  t.equal(arg.prototype, 2)
  t.equal(Object.getPrototypeOf(arg), Object.prototype)
})

test('extension types: timestamps decode to Date, others are refused', async (t) => {
  const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))
  const written = protocol.write({ type: 1, target: 'M', arguments: [when] })
  const m = parseOne(written)
  if (m.type !== 1) return t.fail('expected an Invocation')
  t.ok(m.arguments[0] instanceof Date)
  t.equal((m.arguments[0] as Date).getTime(), when.getTime())
  // timestamp 32: fixext4 type -1, seconds 0x65000000
  const ts = parseOne(framed('95 01 80 c0 a1 4d 91 d6 ff 65 00 00 00'))
  if (ts.type !== 1) return t.fail('expected an Invocation')
  t.equal((ts.arguments[0] as Date).getTime(), 0x65000000 * 1000)
  // fixext1 of application type 5
  t.throws(() => protocol.parse(framed('95 01 80 c0 a1 4d 91 d4 05 00'), 0), { ...INVALID, message: /extension type 5 is not supported/ })
  // ext8 of type 100 (MessagePack-CSharp typeless)
  t.throws(() => protocol.parse(framed('95 01 80 c0 a1 4d 91 c7 01 64 00'), 0), INVALID)
  // a malformed timestamp (3 data bytes)
  t.throws(() => protocol.parse(framed('95 01 80 c0 a1 4d 91 c7 03 ff 00 00 00'), 0), INVALID)
  // the decoder is still usable after a refusal
  t.strictSame(parseOne(bytes('02 91 06')), { type: 6 })
})

test('bin values are Uint8Array copies, not views of the input', async (t) => {
  const data = framed('95 01 80 c0 a1 4d 91 c4 03 01 02 03')
  const m = parseOne(data)
  if (m.type !== 1) return t.fail('expected an Invocation')
  const bin = m.arguments[0] as Uint8Array
  t.ok(bin instanceof Uint8Array)
  t.strictSame([...bin], [1, 2, 3])
  data.fill(0)
  t.strictSame([...bin], [1, 2, 3])
})

test('integers keep their value; 64-bit ones decode as numbers', async (t) => {
  const m = parseOne(framed('95 01 80 c0 a1 4d 94 cf 00 00 00 01 00 00 00 00 d3 ff ff ff ff ff ff ff ff cb 3f f8 00 00 00 00 00 00 ff'))
  if (m.type !== 1) return t.fail('expected an Invocation')
  t.strictSame(m.arguments, [2 ** 32, -1, 1.5, -1])
  t.equal(typeof m.arguments[0], 'number')
})

test('round trip: the official client writes, we read', async (t) => {
  t.strictSame(parseOne(clientWrite({ type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'], headers: {} } as ClientHubMessage)),
    { type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] })
  // the exact bytes the brief quotes
  t.equal(hex(clientWrite({ type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] } as ClientHubMessage)), '0e 95 01 80 a1 30 a4 45 63 68 6f 91 a2 68 69')
  t.strictSame(parseOne(clientWrite({ type: 1, target: 'Fire', arguments: [1, { a: 2 }] } as ClientHubMessage)),
    { type: 1, target: 'Fire', arguments: [1, { a: 2 }] })
  t.strictSame(parseOne(clientWrite({ type: 1, invocationId: '0', target: 'Up', arguments: [], streamIds: ['1'] } as ClientHubMessage)),
    { type: 1, invocationId: '0', target: 'Up', arguments: [], streamIds: ['1'] })
  t.strictSame(parseOne(clientWrite({ type: 4, invocationId: '3', target: 'Count', arguments: [2] } as ClientHubMessage)),
    { type: 4, invocationId: '3', target: 'Count', arguments: [2] })
  t.strictSame(parseOne(clientWrite({ type: 2, invocationId: '1', item: { x: [1, 'two'] } } as ClientHubMessage)),
    { type: 2, invocationId: '1', item: { x: [1, 'two'] } })
  t.strictSame(parseOne(clientWrite({ type: 3, invocationId: 's0', error: 'bad' } as ClientHubMessage)),
    { type: 3, invocationId: 's0', error: 'bad' })
  t.strictSame(parseOne(clientWrite({ type: 3, invocationId: 's0' } as ClientHubMessage)),
    { type: 3, invocationId: 's0', hasResult: false })
  t.strictSame(parseOne(clientWrite({ type: 3, invocationId: 's0', result: 7 } as ClientHubMessage)),
    { type: 3, invocationId: 's0', result: 7, hasResult: true })
  t.strictSame(parseOne(clientWrite({ type: 3, invocationId: 's0', result: null } as ClientHubMessage)),
    { type: 3, invocationId: 's0', result: null, hasResult: true })
  t.strictSame(parseOne(clientWrite({ type: 5, invocationId: '3' } as ClientHubMessage)), { type: 5, invocationId: '3' })
  // the client writes a 2-item Close
  const close = clientWrite({ type: 7 } as ClientHubMessage)
  t.equal(hex(close), '03 92 07 c0')
  t.strictSame(parseOne(close), { type: 7, allowReconnect: false })
  t.equal(hex(clientWrite({ type: 6 } as ClientHubMessage)), '02 91 06')
  t.strictSame(parseOne(clientWrite({ type: 6 } as ClientHubMessage)), { type: 6 })
  t.strictSame(parseOne(clientWrite({ type: 8, sequenceId: 12 } as ClientHubMessage)), { type: 8, sequenceId: 12 })
  t.strictSame(parseOne(clientWrite({ type: 9, sequenceId: 70000 } as ClientHubMessage)), { type: 9, sequenceId: 70000 })
  const when = new Date(Date.UTC(2025, 5, 6))
  const dated = parseOne(clientWrite({ type: 1, target: 'At', arguments: [when] } as ClientHubMessage))
  if (dated.type !== 1) return t.fail('expected an Invocation')
  t.equal((dated.arguments[0] as Date).getTime(), when.getTime())
})

test('round trip: we write, the official client reads', async (t) => {
  const one = (m: HubMessage): ClientHubMessage => {
    const parsed = clientParse(protocol.write(m))
    t.equal(parsed.length, 1)
    return parsed[0]
  }
  t.match(one({ type: 1, target: 'Receive', arguments: ['a', 1, null, { b: [true] }] }),
    { type: 1, target: 'Receive', arguments: ['a', 1, null, { b: [true] }] })
  t.notOk('invocationId' in one({ type: 1, target: 'Receive', arguments: [] }))
  t.match(one({ type: 1, invocationId: 's1', target: 'Ask', arguments: [2] }), { type: 1, invocationId: 's1', target: 'Ask', arguments: [2] })
  t.match(one({ type: 2, invocationId: '4', item: 'tick' }), { type: 2, invocationId: '4', item: 'tick' })
  t.match(one({ type: 2, invocationId: '4', item: null }), { type: 2, invocationId: '4', item: null })
  t.match(one({ type: 3, invocationId: '0', error: 'nope' }), { type: 3, invocationId: '0', error: 'nope', result: undefined })
  const voidCompletion = one({ type: 3, invocationId: '0', hasResult: false })
  t.match(voidCompletion, { type: 3, invocationId: '0', error: undefined, result: undefined })
  t.match(one({ type: 3, invocationId: '0', result: { v: 1 }, hasResult: true }), { type: 3, invocationId: '0', result: { v: 1 }, error: undefined })
  const nullResult = one({ type: 3, invocationId: '0', hasResult: true }) as { result?: unknown }
  t.equal(nullResult.result, null)
  t.match(one({ type: 7 }), { type: 7, error: null, allowReconnect: false })
  t.match(one({ type: 7, error: 'Connection closed with an error.', allowReconnect: true }),
    { type: 7, error: 'Connection closed with an error.', allowReconnect: true })
  t.strictSame(one({ type: 6 }), { type: 6 })
  t.match(one({ type: 8, sequenceId: 3 }), { type: 8, sequenceId: 3 })
  t.match(one({ type: 9, sequenceId: 2 ** 40 }), { type: 9, sequenceId: 2 ** 40 })
  const when = new Date(Date.UTC(2030, 1, 3, 4, 5, 6, 7))
  const dated = one({ type: 2, invocationId: '1', item: when }) as { item?: unknown }
  t.ok(dated.item instanceof Date)
  t.equal((dated.item as Date).getTime(), when.getTime())
  // several of our frames in one buffer, as a transport may batch them
  const batch = Buffer.concat([protocol.write({ type: 6 }), protocol.write({ type: 2, invocationId: '1', item: 1 }), protocol.write({ type: 3, invocationId: '1', hasResult: false })])
  t.equal(clientParse(batch).length, 3)
})

test('write returns independent buffers', async (t) => {
  const a = protocol.write({ type: 2, invocationId: '1', item: 'first' })
  const b = protocol.write({ type: 2, invocationId: '1', item: 'second' })
  t.strictSame(parseOne(a), { type: 2, invocationId: '1', item: 'first' })
  t.strictSame(parseOne(b), { type: 2, invocationId: '1', item: 'second' })
  const p = protocol.write({ type: 6 })
  p[0] = 0xff
  t.equal(hex(protocol.write({ type: 6 })), '02 91 06')
})

test('parse results do not depend on earlier failures', async (t) => {
  t.throws(() => protocol.parse(framed('92 06'), 0), INVALID)
  t.throws(() => protocol.parse(framed('95 01 80 c0 a1 4d 91 d4 05 00'), 0), INVALID)
  t.strictSame(parseAll(bytes('0e 95 01 80 a1 30 a4 45 63 68 6f 91 a2 68 69')), [{ type: 1, invocationId: '0', target: 'Echo', arguments: ['hi'] }])
})

test('declared counts and lengths larger than the bytes that follow are refused before anything is allocated', async (t) => {
  const heapBefore = process.memoryUsage().heapUsed
  // [1, {}, "1", "Echo", [dc ffff ...]]: every level declares 65,535 elements and holds one
  const nested = (levels: number, header: string): Buffer => framed(`95 01 80 a1 31 a4 45 63 68 6f 91 ${Array(levels).fill(header).join(' ')} c0`)
  const cases: Array<[string, Buffer, RegExp]> = [
    ['64k array, flat', framed('95 01 80 a1 31 a4 45 63 68 6f 91 dc ff ff'), /an array declares 65535 elements but only 0 bytes remain/],
    ['4G array, flat', framed('95 01 80 a1 31 a4 45 63 68 6f 91 dd ff ff ff ff'), /an array declares 4294967295 elements/],
    ['64k map, flat', framed('95 01 80 a1 31 a4 45 63 68 6f 91 de ff ff'), /a map declares 65535 entries/],
    ['4G map, flat', framed('95 01 80 a1 31 a4 45 63 68 6f 91 df ff ff ff ff'), /a map declares 4294967295 entries/],
    ['64k arrays nested 5,000 deep', nested(5000, 'dc ff ff'), /an array declares 65535 elements/],
    ['4G arrays nested 3,000 deep', nested(3000, 'dd ff ff ff ff'), /an array declares 4294967295 elements/],
    ['a 4G str', framed('95 01 80 a1 31 a4 45 63 68 6f 91 db ff ff ff ff 61'), /a string declares 4294967295 bytes/],
    ['a 4G bin', framed('95 01 80 a1 31 a4 45 63 68 6f 91 c6 ff ff ff ff 61'), /a bin declares 4294967295 bytes/],
    ['a 4G ext', framed('95 01 80 a1 31 a4 45 63 68 6f 91 c9 ff ff ff ff 01 61'), /an ext declares 4294967296 bytes/],
    ['honest counts nested past the depth limit', framed(`95 01 80 a1 31 a4 45 63 68 6f 91 ${Array(200).fill('91').join(' ')} c0`), /nested deeper than 100 levels/]
  ]
  for (const [why, data, message] of cases) {
    t.throws(() => protocol.parse(data, 0), { ...INVALID, message }, why)
  }
  // Honest nesting within the limit still decodes
  const ok = parseOne(framed(`95 01 80 a1 31 a4 45 63 68 6f 91 ${Array(90).fill('91').join(' ')} c0`))
  t.equal(ok.type, 1)
  // The bombs above would have asked for gigabytes; a parse that allocates only what the
  // bytes hold leaves the heap where it was (generous bound: the failure mode is GBs)
  t.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, 'the heap did not grow by the declared counts')
})

test('scanMessagePack: linear in the bytes, exact about where a value ends', async (t) => {
  const { scanMessagePack } = await import('../lib/protocol/msgpack-scan.js')
  t.strictSame(scanMessagePack(bytes('93 01 a1 61 c0')), { protoKeys: [] })
  t.strictSame(scanMessagePack(bytes('81 a9 5f 5f 70 72 6f 74 6f 5f 5f 01')), { protoKeys: [2] }, 'a map key spelled __proto__ is reported')
  t.strictSame(scanMessagePack(bytes('82 01 a9 5f 5f 70 72 6f 74 6f 5f 5f a9 5f 5f 70 72 6f 74 6f 5f 5f 02')), { protoKeys: [13] }, 'only keys, not values')
  // every fixed-size and length-prefixed type is skipped exactly
  t.strictSame(scanMessagePack(bytes('dc 00 10 ca 00 00 00 00 cb 00 00 00 00 00 00 00 00 cc 01 cd 00 01 ce 00 00 00 01 cf 00 00 00 00 00 00 00 01 d0 ff d1 ff ff d2 ff ff ff ff d3 ff ff ff ff ff ff ff ff d4 01 02 d5 01 02 03 d6 ff 00 00 00 01 d9 01 61 c4 01 00 c7 01 01 00')), { protoKeys: [] })
  t.throws(() => scanMessagePack(bytes('c1')), { ...INVALID, message: /unknown type byte 0xc1/ })
  t.throws(() => scanMessagePack(bytes('91')), { ...INVALID, message: /an array declares 1 elements but only 0 bytes remain/ })
  t.throws(() => scanMessagePack(bytes('cd 01')), { ...INVALID, message: /a number declares 2 bytes but only 1 remain/ })
})
