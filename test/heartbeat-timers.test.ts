// No timer per connection: keep-alive Pings, client timeouts and send-timeout checks all run
// on the registry's one shared heartbeat, so idle connections add no timers however many
// there are (what lets one process hold 100,000 of them; bench/ measures that). Counted two
// ways: the live timers process.getActiveResourcesInfo() lists (ref'd ones), and every
// setTimeout/setInterval made while 201 connections are pinged (ref'd or not).
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import type WebSocket from 'ws'
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
