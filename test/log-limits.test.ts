// The log is a resource too: one message carrying 25,000 Completions for unknown ids once
// wrote 25,000 warn lines (4.9 MiB). Lines a client can cause again and again on a live
// connection are rate-limited per connection and per kind, and what was held back is counted
// when the connection ends, never dropped unsaid.
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { test } from 'tap'
import Type from 'typebox'
import signalr, { defineHub } from '../index.js'
import { LOG_BURST, LOG_INTERVAL_MS, LogLimiter } from '../lib/log-limiter.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { until } from './fixtures/until.js'

const path = '/hubs/logs'
const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], handler: (_ctx, s) => s },
    Fail: { args: [], handler: () => { throw new Error('boom') } }
  }
})

test('25,000 Completions for unknown ids in one message: a handful of warn lines, then a count', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter((l) => l.length > 0)); done() } })
  const app = Fastify({ logger: { level: 'info', stream }, forceCloseConnections: true })
  await app.register(signalr)
  app.hub(path, hub)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const c = await rawJsonConnection(t, base, path)
  const count = 25_000
  let message = ''
  for (let i = 0; i < count; i++) message += `{"type":3,"invocationId":"${i}"}${RS}`
  c.send(message)
  // And calls that fail, or name no method, as many times
  c.send(`{"type":1,"invocationId":"f","target":"Fail","arguments":[]}${RS}`.repeat(200) + `{"type":1,"target":"Nope","arguments":[]}${RS}`.repeat(200))
  c.send(`{"type":1,"invocationId":"e","target":"Echo","arguments":["done"]}${RS}`)
  while (true) {
    const frame = await c.next(20_000)
    if (typeof frame === 'string' && frame.includes('"invocationId":"e"')) break
  }
  const about = (text: string): string[] => lines.filter((l) => l.includes(text))
  t.equal(about('Completion for an unknown invocation ignored').length, LOG_BURST, `${count} unknown Completions wrote ${LOG_BURST} lines`)
  t.equal(about('hub method threw').length, LOG_BURST, '200 failing calls wrote as many lines')
  t.equal(about('unknown hub method').length, LOG_BURST, '200 unknown methods wrote as many lines')
  const bytes = lines.reduce((n, l) => n + l.length, 0)
  t.ok(bytes < 64 * 1024, `the log grew ${bytes} bytes for ${(Buffer.byteLength(message) / 1048576).toFixed(1)} MiB of input`)
  c.ws.terminate()
  await until(() => about('suppressed by the per-connection rate limit').length === 3, 5000)
  const counted = about('suppressed by the per-connection rate limit').map((l) => JSON.parse(l) as { kind: string, suppressed: number })
  t.same(counted.map((l) => [l.kind, l.suppressed]).sort(), [
    ['method-threw', 200 - LOG_BURST],
    ['unknown-completion', count - LOG_BURST],
    ['unknown-method', 200 - LOG_BURST]
  ], 'at the end, every line held back is counted')
})

test('LogLimiter: a burst, then one line per interval carrying the count it stands for', async (t) => {
  const out: Array<[Record<string, unknown>, string]> = []
  const logger = { warn: (fields: Record<string, unknown>, message: string) => { out.push([fields, message]) }, info: () => {} }
  const limiter = new LogLimiter()
  const log = (now: number): void => { limiter.log(logger as never, 'warn', 'k', { a: 1 }, 'm', now) }
  for (let i = 0; i < LOG_BURST + 5; i++) log(1000)
  t.equal(out.length, LOG_BURST)
  log(1000 + LOG_INTERVAL_MS - 1)
  t.equal(out.length, LOG_BURST, 'still inside the interval')
  log(1000 + LOG_INTERVAL_MS)
  t.equal(out.length, LOG_BURST + 1)
  t.same(out[LOG_BURST][0], { a: 1, suppressed: 6 })
  t.match(out[LOG_BURST][1], /6 more like it/)
})
