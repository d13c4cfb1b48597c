// When a client's start() resolves, its connection is reachable from every server of the
// fleet: the handshake answer waits until the backplane has confirmed the connection's
// subscriptions. ASP.NET Core answers first and subscribes after, and a message sent from
// another server in that window is lost; under load that window made our own fleet tests
// flaky. Here one server reaches Redis through a proxy that holds its commands, so the
// window is as long as the test wants, deterministically. If Redis cannot take the
// connection at all, start() fails with a handshake error and the server's other
// connections are untouched.
import t from 'tap'
import { buildClient, connect, nextCall, record } from './fixtures/client.js'
import { OUTBOUND_HARD_CAP_FACTOR } from '../lib/connection.js'
import { FLEET_PATH, fleetManager, startFleetServer } from './fixtures/fleet.js'
import { memoryMetrics, valueOf } from './fixtures/otel.js'
import { startRedis, type ClientKind, type RedisServer, withRedis } from './fixtures/redis.js'
import { startTcpProxy } from './fixtures/tcp-proxy.js'
import { until } from './fixtures/until.js'

const HELD_MS = 300

withRedis(t, () => {
  for (const kind of ['node-redis', 'ioredis'] as ClientKind[]) {
    t.test(`${kind}: start() resolves only once other servers can reach the connection`, async (t) => {
      const redis = await startRedis(t)
      const proxy = await startTcpProxy(t, redis.port)
      const viaProxy: RedisServer = { ...redis, port: proxy.port, url: `redis://127.0.0.1:${proxy.port}` }
      const A = await startFleetServer(t, redis, kind)
      const B = await startFleetServer(t, viaProxy, kind)
      // B's fixed channels are subscribed once a first connection has joined
      await connect(t, B.url, { user: 'carol' })
      const a = await connect(t, A.url, { user: 'alice' })

      proxy.hold()
      const bob = buildClient(B.url, { user: 'bob' })
      t.teardown(async () => { await bob.stop() })
      const calls = record(bob, 'Receive')
      let started = false
      const starting = bob.start().then(() => { started = true })
      // B has bob (its handshake is valid) but cannot subscribe his channels yet
      await until(() => fleetManager(B).indexSizes().connections === 2, 5000)
      // A broadcast reaches B while bob joins: it is kept for him, after his handshake answer
      await a.invoke('Send', 'all', [], 'while joining')
      await new Promise((resolve) => { setTimeout(resolve, HELD_MS) })
      t.notOk(started, `start() has not resolved while B could not reach Redis for ${HELD_MS} ms`)

      proxy.release()
      await starting
      t.ok(started, 'start() resolved once Redis confirmed the subscriptions')
      // At once, from the other server: by user, and by connection id
      const byUser = nextCall(bob, 'Receive', 5000)
      await a.invoke('Send', 'user', ['bob'], 'to the user')
      const delivered = [await byUser]
      const byId = nextCall(bob, 'Receive', 5000)
      await a.invoke('Send', 'client', [bob.connectionId as string], 'to the connection')
      delivered.push(await byId)
      t.same(delivered, [['user', 'to the user'], ['client', 'to the connection']], 'both crossed servers at the first try')
      t.same(calls[0], ['all', 'while joining'], 'the broadcast sent while he joined came first, after the handshake answer')
    })

    t.test(`${kind}: what waits for a joining connection is bounded by the outbound hard cap`, async (t) => {
      const MAX_BUFFER = 4096
      const CAP = MAX_BUFFER * OUTBOUND_HARD_CAP_FACTOR
      const redis = await startRedis(t)
      const proxy = await startTcpProxy(t, redis.port)
      const A = await startFleetServer(t, redis, kind)
      const B = await startFleetServer(t, { ...redis, port: proxy.port, url: `redis://127.0.0.1:${proxy.port}` }, kind, {}, { transportMaxBufferSize: MAX_BUFFER })
      await connect(t, B.url, { user: 'carol' })
      const alice = await connect(t, A.url, { user: 'alice' })
      const seen = record(alice, 'Receive')

      proxy.hold()
      const bob = buildClient(B.url, { user: 'bob' })
      t.teardown(async () => { await bob.stop() })
      // Settled here: the cut may come while the broadcasts below are still being sent
      const outcome = bob.start().then(() => 'started', (err: Error) => err)
      await until(() => fleetManager(B).indexSizes().connections === 2, 5000)
      // Broadcasts keep arriving at B (Redis still delivers to its subscriber) while bob cannot join
      const text = 'x'.repeat(3000)
      const hubA = A.app.signalr.hub(FLEET_PATH)
      for (let i = 0; i < 10; i++) await hubA.clients.all.send('Receive', 'all', text)
      t.type(await outcome, Error, 'bob never got a handshake answer: his connection was cut')
      const line = B.logs.find((l) => l.includes('outbound buffer is full'))
      const held = Number((JSON.parse(line ?? '{}') as { buffered?: number }).buffered)
      t.ok(held > CAP && held <= CAP + text.length + 100, `cut once more than the cap was held (${held} bytes, cap ${CAP})`)
      await until(() => fleetManager(B).indexSizes().connections === 1, 5000)
      t.pass('B let go of him')
      proxy.release()
      await until(() => seen.length === 10, 5000)
      t.pass('a reader elsewhere got all ten')
    })

    t.test(`${kind}: a connection Redis cannot take fails its start() with a handshake error`, async (t) => {
      const redis = await startRedis(t)
      const metrics = memoryMetrics()
      const B = await startFleetServer(t, redis, kind, { commandTimeout: 600 }, { telemetry: { meterProvider: metrics.meterProvider } })
      const carol = await connect(t, B.url, { user: 'carol' })
      await redis.kill()
      await until(() => B.logs.some((l) => l.includes('lost the Redis backplane')), 5000)

      const dave = buildClient(B.url, { user: 'dave' })
      t.teardown(async () => { await dave.stop() })
      await t.rejects(dave.start(), /Server returned handshake error: An unexpected error occurred during connection handshake\./,
        'start() fails with the handshake error ASP.NET Core sends for a failure it did not expect')
      t.ok(B.logs.some((l) => l.includes('the lifetime manager refused the connection')), 'the refusal is logged with its cause')
      const failures = valueOf((await metrics.collect()).get('signalr.server.handshake.failures'), { 'signalr.hub': FLEET_PATH, 'error.type': 'refused' })
      t.equal(failures, 1, 'counted as a refused handshake')
      await until(() => fleetManager(B).indexSizes().connections === 1, 5000)
      t.same(fleetManager(B).indexSizes().userSubscriptions, 1, 'nothing of the refused connection is left: only carol\'s user channel')

      // The server's other connection is untouched: a send to the caller never needs Redis
      const echoed = nextCall(carol, 'Receive', 5000)
      await carol.invoke('Send', 'caller', [], 'still here')
      t.same(await echoed, ['caller', 'still here'], 'the connection already open still works')
    })
  }
})
