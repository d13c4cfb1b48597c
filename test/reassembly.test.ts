// Inbound reassembly costs work linear in the bytes received, however the client slices
// them. Joining the whole buffer on every read, and rescanning it from the start for the end
// of a record, made one 1 MB record sent in 16-byte frames cost 20 s of CPU: O(n²) bytes
// copied and scanned. What is copied is counted here, through Buffer.concat, the one way
// reassembly joins bytes.
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { InboundBuffer } from '../lib/inbound-buffer.js'
import { startServer } from './fixtures/server.js'
import { completion, invocation, open, type Kind, type Protocol } from './fixtures/wire.js'

const path = '/hubs/reassembly'
const hub = defineHub({
  methods: {
    Length: { args: [Type.String()], handler: (_ctx, s) => s.length }
  }
})

/** Counts the bytes Buffer.concat copies while `fn` runs. */
async function copiedDuring (fn: () => Promise<void>): Promise<number> {
  const original = Buffer.concat
  let copied = 0
  Buffer.concat = function (list: readonly Uint8Array[], totalLength?: number) {
    const out = original(list, totalLength)
    copied += out.length
    return out
  } as typeof Buffer.concat
  try {
    await fn()
  } finally {
    Buffer.concat = original
  }
  return copied
}

test('one 1 MB record in 16-byte frames is joined once, not once per frame', async (t) => {
  const MB = 1_000_000
  const { base } = await startServer(t, { hub, path, plugin: { maximumReceiveMessageSize: 2 * 1024 * 1024 } })
  const cases: Array<[Kind, Protocol]> = [['ws', 'json'], ['ws', 'messagepack']]
  for (const [kind, protocol] of cases) {
    const c = await open(kind, base, path, { protocol })
    const record = invocation(protocol, '1', 'Length', 'x'.repeat(MB))
    const ws = (c as unknown as { ws: import('ws').WebSocket }).ws
    const started = performance.now()
    const copied = await copiedDuring(async () => {
      for (let i = 0; i < record.length; i += 16) ws.send(record.subarray(i, i + 16), { binary: protocol === 'messagepack' })
      const m = await completion(c, '1', 120_000)
      t.equal(m.result, MB, `${kind}/${protocol}: the record arrived whole`)
    })
    t.comment(`${kind}/${protocol}: ${Math.ceil(record.length / 16)} frames, ${(copied / 1e6).toFixed(1)} MB copied, ${(performance.now() - started).toFixed(0)} ms`)
    // Quadratic joining would copy ~31 GB; linear joining copies the record a small number of times
    t.ok(copied < 4 * record.length, `${kind}/${protocol}: ${(copied / 1e6).toFixed(1)} MB copied for a ${(record.length / 1e6).toFixed(1)} MB record`)
    c.destroy()
  }
})

test('InboundBuffer: a text record is searched for once per chunk, a binary frame waits for its declared length', async (t) => {
  const text = new InboundBuffer('text')
  for (let i = 0; i < 1000; i++) text.append(Buffer.from('abcd'))
  t.equal(text.ready, false, 'no separator yet: nothing to parse')
  t.equal(text.length, 4000)
  t.equal(text.overLimit(3999), true, 'an unterminated record already past the limit is refused at once')
  t.equal(text.overLimit(0), false, '0 means no limit')
  text.append(Buffer.from('e\u001efg'))
  t.equal(text.ready, true)
  const all = text.take()
  t.equal(all.length, 4004)
  text.consume(4002, false)
  t.equal(text.take().toString(), 'fg', 'the partial record after the separator is kept')
  t.equal(text.ready, false)

  const binary = new InboundBuffer('binary')
  // A VarInt prefix of 300 (0xac 0x02), then the body in pieces
  binary.append(Buffer.from([0xac]))
  t.equal(binary.ready, true, 'an incomplete prefix: parse as soon as more arrives')
  binary.consume(0, false)
  binary.append(Buffer.from([0x02]))
  binary.consume(0, false)
  for (let i = 0; i < 299; i++) binary.append(Buffer.from([0x61]))
  t.equal(binary.ready, false, 'one byte short of the declared frame: nothing to parse')
  binary.append(Buffer.from([0x61]))
  t.equal(binary.ready, true, 'the whole frame is there')
  t.equal(binary.take().length, 302)
})
