// No timer per connection: keep-alive Pings, client timeouts and send-timeout checks all run
// on the registry's one shared heartbeat, so idle connections add no timers however many
// there are (what lets one process hold 100,000 of them; bench/ measures that). Counted two
// ways: the live timers process.getActiveResourcesInfo() lists (ref'd ones), and every
// setTimeout/setInterval made while 201 connections are pinged (ref'd or not).
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import type WebSocket from 'ws'
import { Connection } from '../lib/connection.js'
import { HEARTBEAT_CHUNK, registryOf } from '../lib/registry.js'
import { openRawJson } from './fixtures/raw-json.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

const path = '/hubs/scenario'

async function idleClient (base: string, pings: { count: number }): Promise<WebSocket> {
  const { ws } = await openRawJson(base, path)
  ws.on('message', (data: Buffer) => { if (data.toString().includes('"type":6')) pings.count++ })
  return ws
}

function timers (): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

/** Counts the timers made until the returned function is called, which restores the globals. */
function countTimersMade (): () => number {
  const { setTimeout: st, setInterval: si } = globalThis
  let made = 0
  globalThis.setTimeout = ((...args: Parameters<typeof st>) => { made++; return st(...args) }) as typeof st
  globalThis.setInterval = ((...args: Parameters<typeof si>) => { made++; return si(...args) }) as typeof si
  return () => {
    globalThis.setTimeout = st
    globalThis.setInterval = si
    return made
  }
}

test('200 idle connections with Pings running add no timers to the one heartbeat', async (t) => {
  const { base } = await startServer(t, { path, plugin: { keepAliveInterval: 200 } })
  const pings = { count: 0 }
  const first = await idleClient(base, pings)
  t.teardown(() => { first.terminate() })
  // Settle: whatever one connection's setup left behind (the handshake's own timers) is gone
  await sleep(300)
  const withOne = timers()
  const clients: WebSocket[] = []
  t.teardown(() => { for (const c of clients) c.terminate() })
  for (let i = 0; i < 200; i += 20) clients.push(...await Promise.all(Array.from({ length: 20 }, async () => await idleClient(base, pings))))
  // Every connection is pinged: the heartbeat reaches them all
  const stop = countTimersMade()
  const before = pings.count
  await until(() => pings.count - before >= 2 * 201, 10_000).finally(() => {})
  const made = stop()
  await sleep(300)
  const withMany = timers()
  t.comment(`active timers: ${withOne} with 1 connection, ${withMany} with 201; ${made} timers made while ${pings.count - before} Pings went out`)
  t.ok(withMany <= withOne, `no live timer per connection (${withOne} → ${withMany})`)
  // until() polls with timers of its own: a handful, never one per connection
  t.ok(made < 50, `no timer made per connection or per Ping (${made} for ${pings.count - before} Pings)`)
})

test('the heartbeat ticks at most heartbeatChunk connections per synchronous step, and each connection once per pass', async (t) => {
  const { app, base } = await startServer(t, { path, plugin: { keepAliveInterval: 200 } })
  const registry = registryOf(app.signalr)
  t.equal(registry.heartbeatChunk, HEARTBEAT_CHUNK, 'the default chunk')
  // 51 connections in chunks of 16: each pass is steps of 16, 16, 16 and 3
  const chunk = 16
  registry.heartbeatChunk = chunk
  const pings = { count: 0 }
  const clients: WebSocket[] = []
  t.teardown(() => { for (const c of clients) c.terminate() })
  for (let i = 0; i < 51; i += 17) clients.push(...await Promise.all(Array.from({ length: 17 }, async () => await idleClient(base, pings))))
  // A step is the ticks made before the stack unwinds: a microtask queued at its first tick
  // runs only once the step's synchronous loop is over
  const steps: string[][] = []
  let open: string[] | undefined
  const tick = Connection.prototype.tick
  Connection.prototype.tick = function (this: Connection, now: number) {
    if (open === undefined) {
      const step: string[] = []
      open = step
      steps.push(step)
      queueMicrotask(() => { open = undefined })
    }
    open.push(this.connectionId)
    tick.call(this, now)
  }
  t.teardown(() => { Connection.prototype.tick = tick })
  // Past the first pass boundary (the short step), then three whole passes
  await until(() => steps.filter((s) => s.length < chunk).length >= 4, 10_000)
  Connection.prototype.tick = tick
  const sizes = steps.map((s) => s.length)
  t.ok(sizes.every((n) => n <= chunk), `no step ticks more than ${chunk} connections (${sizes.join(', ')})`)
  const first = sizes.findIndex((n) => n < chunk) + 1
  for (let p = 0; p < 3; p++) {
    const pass = steps.slice(first + p * 4, first + p * 4 + 4)
    t.same(pass.map((s) => s.length), [chunk, chunk, chunk, 51 - 3 * chunk], `pass ${p + 1}: three full steps and the rest`)
    t.equal(new Set(pass.flat()).size, 51, `pass ${p + 1}: every connection ticked once`)
  }
  // The Pings still reach every connection
  const before = pings.count
  await until(() => pings.count - before >= 51, 10_000)
  t.pass('Pings reach all 51 connections')

  // The interval firing again while a pass is under way does not start a second one: fired
  // twice in one turn, the heartbeat ticks one step, not two
  await new Promise((resolve) => { setImmediate(resolve) })
  await until(() => (registry as unknown as { pass: unknown }).pass === undefined, 10_000)
  let ticked = 0
  Connection.prototype.tick = function (this: Connection, now: number) {
    ticked++
    tick.call(this, now)
  }
  const fire = (registry as unknown as { heartbeat: { _onTimeout: () => void } }).heartbeat
  fire._onTimeout()
  fire._onTimeout()
  Connection.prototype.tick = tick
  t.equal(ticked, chunk, 'a second firing during the pass ticks nothing more')
})
