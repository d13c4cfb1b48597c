// MessagePack allocation bombs through a real socket, on every transport that carries
// binary (WebSockets and Long Polling POSTs). `dc ff ff` is three bytes that declare an
// array of 65,535 elements; nested 10,000 times in one ~30 KB Invocation (under the 32 KiB
// default limit) it once grew the heap to 4 GB and killed the process. Each bomb must get
// the error Close, leave the heap where it was, and leave the neighbours alone.
import v8 from 'node:v8'
import vm from 'node:vm'
import { test, type Test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { writeVarIntFrame } from '../lib/protocol/binary-framing.js'
import { startServer } from './fixtures/server.js'
import { ERROR_CLOSE, echoes, open, type Kind, type WireClient } from './fixtures/wire.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const path = '/hubs/bombs'
const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], handler: (_ctx, s) => s },
    Any: { args: [Type.Unknown()], handler: () => 'ok' }
  }
})

/** [1, {}, "1", "Any", [<argument>]] */
function invocation (argument: Buffer): Buffer {
  return writeVarIntFrame(Buffer.concat([Buffer.from([0x95, 0x01, 0x80, 0xa1, 0x31, 0xa3]), Buffer.from('Any'), Buffer.from([0x91]), argument]))
}

const BUDGET = 30_000
const repeat = (header: number[], times: number): Buffer => Buffer.from(Array.from({ length: times }, () => header).flat())

const bombs: Array<[string, Buffer]> = [
  // Every level declares 64k (or 4G) elements and holds only the next level
  ['64k arrays nested 10,000 deep', invocation(repeat([0xdc, 0xff, 0xff], 10_000))],
  ['4G arrays nested 6,000 deep', invocation(repeat([0xdd, 0xff, 0xff, 0xff, 0xff], 6_000))],
  ['64k maps nested as values 7,500 deep', invocation(Buffer.concat([repeat([0xde, 0xff, 0xff, 0xa0], 7_500)]))],
  // One header, then honest bytes that fall far short of what it declares
  ['one 64k array holding 29,990 elements', invocation(Buffer.concat([Buffer.from([0xdc, 0xff, 0xff]), Buffer.alloc(BUDGET - 10, 0xc0)]))],
  ['one 4G array holding 29,990 elements', invocation(Buffer.concat([Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(BUDGET - 10, 0xc0)]))],
  ['one 4G map', invocation(Buffer.concat([Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(BUDGET - 10, 0xc0)]))],
  // Flat: thousands of sibling headers, each declaring 64k
  ['7,000 sibling 64k arrays', invocation(Buffer.concat([Buffer.from([0xdc, 0x1b, 0x58]), repeat([0xdc, 0xff, 0xff], 7_000)]))],
  ['a 4G str, bin and ext', invocation(Buffer.from([0x93, 0xdb, 0xff, 0xff, 0xff, 0xff, 0xc6, 0xff, 0xff, 0xff, 0xff, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]))]
]

async function expectErrorClose (t: Test, c: WireClient, what: string): Promise<void> {
  const got = await c.next(10_000)
  t.equal(got.toString('hex'), ERROR_CLOSE.messagepack.toString('hex'), `${c.kind}: ${what}: the error Close`)
  await c.ended(10_000)
}

test('MessagePack allocation bombs get the error Close, and the heap stays where it was', async (t) => {
  const { base } = await startServer(t, { hub, path, logger: false })
  const neighbour = await open('ws', base, path, { protocol: 'json' })
  t.teardown(() => { neighbour.destroy() })
  for (const [what, bytes] of bombs) {
    t.ok(bytes.length <= 32 * 1024, `${what}: ${bytes.length} bytes, within the default 32 KiB limit`)
    for (const kind of ['ws', 'lp'] as Kind[]) {
      const c = await open(kind, base, path, { protocol: 'messagepack' })
      gc()
      const before = process.memoryUsage().heapUsed
      await c.send(bytes)
      await expectErrorClose(t, c, what)
      gc()
      const growth = process.memoryUsage().heapUsed - before
      // The bombs ask for 0.5 MB to gigabytes per level; what the server may spend is on the
      // order of the message itself. 64 MiB is far above noise and far below a nested bomb (GBs)
      t.ok(growth < 64 * 1024 * 1024, `${kind}: ${what}: heap grew ${(growth / 1048576).toFixed(2)} MiB`)
    }
    t.ok(await echoes(neighbour, `after ${what}`), 'a neighbour still echoes')
  }
})
