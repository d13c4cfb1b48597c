// One message made of very many small messages: a 1 MiB WebSocket message or Long Polling
// POST holding 349,000 MessagePack Pings (or 95,000 JSON ones). Draining them once cost time
// quadratic in their number (Array.prototype.shift on the dispatcher's queue) and froze the
// event loop for 15 s, so a neighbour's Echo waited 15 s. Now the work is linear, and a
// connection with a huge batch yields between slices: a neighbour is served meanwhile.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub } from '../index.js'
import { MESSAGES_PER_SLICE } from '../lib/connection.js'
import { startServer } from './fixtures/server.js'
import { completion, invocation, open, RS, type Kind, type Protocol, type WireClient } from './fixtures/wire.js'

const path = '/hubs/flood'
const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], handler: (_ctx, s) => s }
  }
})

const MiB = 1024 * 1024
const PING: Record<Protocol, Buffer> = { messagepack: Buffer.from([0x02, 0x91, 0x06]), json: Buffer.from(`{"type":6}${RS}`) }

/** As many Pings as fit in a little under 1 MiB (the WebSocket message and POST body limit). */
function flood (protocol: Protocol): { bytes: Buffer, count: number } {
  const count = Math.floor((MiB - 2048) / PING[protocol].length)
  return { bytes: Buffer.alloc(count * PING[protocol].length, PING[protocol]), count }
}

let seq = 0
async function echoLatency (c: WireClient): Promise<number> {
  const id = `n${++seq}`
  const started = performance.now()
  await c.send(invocation(c.protocol, id, 'Echo', 'hi'))
  const m = await completion(c, id, 30_000)
  if (m.result !== 'hi') throw new Error('the neighbour got a wrong answer')
  return performance.now() - started
}

test('a frame of hundreds of thousands of Pings: neighbours are served while it is worked through', async (t) => {
  const { base } = await startServer(t, { hub, path })
  const neighbour = await open('ws', base, path, { protocol: 'json' })
  t.teardown(() => { neighbour.destroy() })
  t.ok(MESSAGES_PER_SLICE <= 1024, `a connection yields after at most ${MESSAGES_PER_SLICE} messages`)
  const cases: Array<[Kind, Protocol]> = [['ws', 'messagepack'], ['lp', 'messagepack'], ['ws', 'json'], ['lp', 'json'], ['sse', 'json']]
  for (const [kind, protocol] of cases) {
    const { bytes, count } = flood(protocol)
    const attacker = await open(kind, base, path, { protocol })
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const started = performance.now()
    const sent = attacker.send(bytes, { frame: protocol === 'json' ? 'text' : 'binary' })
    // The neighbour asks while the flood is being worked through
    const latencies: number[] = []
    for (let i = 0; i < 5; i++) latencies.push(await echoLatency(neighbour))
    const status = await sent
    // The attacker's own Echo comes after all of its Pings: it is answered once they are done
    const own = `own${++seq}`
    await attacker.send(invocation(protocol, own, 'Echo', 'done'))
    const m = await completion(attacker, own, 60_000)
    const total = performance.now() - started
    delay.disable()
    const worst = Math.max(...latencies)
    t.comment(`${kind}/${protocol}: ${count} Pings (${(bytes.length / MiB).toFixed(2)} MiB) worked through in ${total.toFixed(0)} ms; neighbour Echo ${latencies.map((l) => l.toFixed(1)).join(', ')} ms; event-loop delay max ${(delay.max / 1e6).toFixed(1)} ms`)
    t.equal(m.result, 'done', `${kind}/${protocol}: the flooding connection lives on and answers after its Pings`)
    if (kind !== 'ws') t.equal(status, 200, 'the POST was taken whole')
    // Before: 15 s for MessagePack, 1.2 s for JSON. The bounds leave room for a loaded machine
    t.ok(worst < 1000, `${kind}/${protocol}: a neighbour's Echo took at most ${worst.toFixed(0)} ms during the flood`)
    t.ok(delay.max / 1e6 < 1000, `${kind}/${protocol}: the event loop never stalled for a second (max ${(delay.max / 1e6).toFixed(0)} ms)`)
    attacker.destroy()
  }
})
