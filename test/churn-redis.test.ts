// The churn test's Redis variant: 1 200 connections over every transport open on two
// servers sharing one redis-server, join groups (half of them from the other server: a
// group command and its ack), and close in every way, at most 50 at a time. Afterwards no
// subscription, presence key, pending ack or result, or timer is left behind.
import http from 'node:http'
import { test } from 'tap'
import { FLEET_HUB_NAME, FLEET_PATH, startFleetServer, fleetManager } from './fixtures/fleet.js'
import { redisMissing, startRedis } from './fixtures/redis.js'
import { until } from './fixtures/until.js'
import { completion, encode, invocation, open, type Kind } from './fixtures/wire.js'

const TOTAL = 1200
const CONCURRENCY = 50

function timers (): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

const missing = redisMissing()
test('connections opened and closed across a Redis fleet leave nothing behind', { skip: missing === false ? undefined : missing }, async (t) => {
  const redis = await startRedis(t)
  const servers = [await startFleetServer(t, redis, 'ioredis', { heartbeatInterval: 1000 }), await startFleetServer(t, redis, 'node-redis', { heartbeatInterval: 1000 })]
  const fixed = servers.map((s) => fleetManager(s).subscribedChannels())
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  t.teardown(() => { agent.destroy() })
  const failures: string[] = []
  const baseTimers = timers()

  async function one (i: number): Promise<void> {
    const kind: Kind = i % 7 === 3 ? 'lp' : i % 7 === 5 ? 'sse' : 'ws'
    const home = servers[i % 2]
    const other = servers[(i + 1) % 2]
    const base = home.url.slice(0, home.url.indexOf(FLEET_PATH))
    const c = await open(kind, base, FLEET_PATH, { protocol: i % 3 === 0 && kind !== 'sse' ? 'messagepack' : 'json', query: `&user=u${i % 40}`, agent })
    await c.send(invocation(c.protocol, 'j', 'AddToGroup', c.connectionId, `g${i % 30}`))
    // A join that fails is reported, and its connection still ends, so the count below means something
    const joined = await completion(c, 'j', 15_000).catch((err: Error) => { c.destroy(); throw err })
    if (joined.error !== undefined) { c.destroy(); throw new Error(joined.error) }
    // Half join a second group from the other server
    if (i % 2 === 0) await other.app.signalr.hub(FLEET_PATH).groups.add(c.connectionId, `h${i % 20}`)
    switch (i % 3) {
      case 0: c.destroy(); break
      case 1: await c.send(encode(c.protocol, { type: 7 })); break
      case 2: await home.app.signalr.hub(FLEET_PATH).close(c.connectionId)
    }
    if (kind === 'ws' || i % 3 !== 0) await c.ended(5000).catch(() => {})
  }

  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < TOTAL) {
      const i = next++
      try { await one(i) } catch (err) { failures.push(`#${i}: ${(err as Error).message}`) }
    }
  }))
  t.same(failures, [], 'every connection opened, joined and closed')
  for (const s of servers) await until(() => s.app.signalr.connectionCount === 0, 15_000)
  const empty = { connections: 0, connectionGroups: 0, connectionSubscriptions: 0, groupSubscriptions: 0, userSubscriptions: 0, pendingAcks: 0, pendingResults: 0, pendingRequests: 0, pendingForwards: 0, servedForOthers: 0 }
  for (const [i, s] of servers.entries()) {
    await until(() => fleetManager(s).indexSizes().connectionSubscriptions === 0, 10_000)
    t.same(fleetManager(s).indexSizes(), empty, `server ${i}: every index is empty`)
    t.same(fleetManager(s).subscribedChannels(), fixed[i], `server ${i}: only its fixed channels are subscribed`)
  }
  const channels = redis.cli('PUBSUB', 'CHANNELS').split('\n').filter((x) => x !== '').sort()
  t.same(channels, [...new Set(fixed.flat())].sort(), 'Redis has no other subscription (PUBSUB CHANNELS)')
  const keys = redis.cli('KEYS', `${FLEET_HUB_NAME}:fastify-signalr:*`).split('\n').filter((x) => x !== '').sort()
  const expected = [`${FLEET_HUB_NAME}:fastify-signalr:servers`, ...servers.map((s) => `${FLEET_HUB_NAME}:fastify-signalr:alive:${s.backplane.serverName}`)].sort()
  t.same(keys, expected, 'no presence key is left but the servers set and the heartbeats')
  t.equal(await servers[0].app.signalr.hub(FLEET_PATH).connectionCount(), 0, 'the fleet counts no connection')
  const afterTimers = timers()
  t.ok(afterTimers <= baseTimers + 2, `timers: ${baseTimers} before, ${afterTimers} after`)
})
