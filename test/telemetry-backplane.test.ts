// The backplane's own instruments, read through the real metrics SDK while two servers share
// a real redis-server: publishes counted by channel kind (never by channel name, which holds
// ids and group names), failures by operation and reason while Redis is gone or paused, and
// one reconnect per hub when it is back.
import t from 'tap'
import { connect, nextCall } from './fixtures/client.js'
import { FLEET_PATH, startFleetServer } from './fixtures/fleet.js'
import { memoryMetrics, valueOf } from './fixtures/otel.js'
import { startRedis, type ClientKind, withRedis } from './fixtures/redis.js'
import { until } from './fixtures/until.js'
import { RedisChannels } from '../lib/lifetime/redis/channels.js'
import { failureOf } from '../lib/lifetime/redis/seam.js'

const COMMAND_TIMEOUT = 600
const base = { 'signalr.hub': FLEET_PATH, 'signalr.backplane': 'redis' }

t.test('every channel a hub publishes on has a kind from the bounded set', async (t) => {
  const c = new RedisChannels('prefix', 'App.ChatHub', 'srv_1')
  const forwarding = c.key('tx', 'token') // request forwarding's channels live under our keys
  t.same([
    c.all, c.connection('id:with:colons'), c.group('a:b'), c.user('u'), c.groupManagement, c.ackOf('other'), c.returnResults,
    c.returnOnWire('Other.Hub:internal:return:srv_2'), c.requestsOf('srv_2'), forwarding, c.key('txreply', 'srv_1')
  ].map((ch) => c.kindOf(ch)), ['all', 'connection', 'group', 'user', 'group_management', 'ack', 'return', 'return', 'server_request', 'forward', 'forward'])
  t.equal(failureOf(new Error('not the seam\'s')), 'error', 'an error the seam did not make counts as error')
})

withRedis(t, () => {
  for (const kind of ['node-redis', 'ioredis'] as ClientKind[]) {
    t.test(`${kind}: publishes, failures and reconnects`, async (t) => {
      const redis = await startRedis(t)
      const metricsA = memoryMetrics()
      const settings = { commandTimeout: COMMAND_TIMEOUT, heartbeatInterval: 200 }
      const A = await startFleetServer(t, redis, kind, settings, { telemetry: { meterProvider: metricsA.meterProvider } })
      const B = await startFleetServer(t, redis, kind, settings)
      const a = await connect(t, A.url, { user: 'alice' })
      const b = await connect(t, B.url, { user: 'bob' })
      const publishes = async (channel: string): Promise<number> => valueOf((await metricsA.collect()).get('signalr.server.backplane.publishes'), { ...base, 'signalr.backplane.channel': channel }) ?? 0
      const before = new Map<string, number>()
      for (const ch of ['all', 'connection', 'group', 'user', 'group_management', 'ack']) before.set(ch, await publishes(ch))

      // A's server publishes once per target; B's client receives each
      await a.invoke('AddToGroup', b.connectionId as string, 'room') // B's connection: a group command, acked by B
      for (const [target, names] of [['all', []], ['client', [b.connectionId as string]], ['group', ['room']], ['user', ['bob']]] as const) {
        const arrived = nextCall(b, 'Receive', 5000)
        await a.invoke('Send', target, names, `via ${target}`)
        t.same(await arrived, [target, `via ${target}`], `${target} crossed servers`)
      }
      const metric = (await metricsA.collect()).get('signalr.server.backplane.publishes')
      t.equal(metric?.descriptor.unit, '{message}')
      for (const ch of ['all', 'connection', 'group', 'user', 'group_management']) {
        t.equal(await publishes(ch) - (before.get(ch) ?? 0), 1, `one publish on the ${ch} channel kind`)
      }
      const kinds = new Set(metric?.dataPoints.map((p) => String(p.attributes['signalr.backplane.channel'])))
      t.ok([...kinds].every((k) => ['all', 'connection', 'group', 'user', 'group_management', 'ack', 'return', 'server_request', 'forward'].includes(k)),
        `channel kinds are a bounded set, no channel names (${[...kinds].join(', ')})`)
      t.notOk(metric?.dataPoints.some((p) => Object.values(p.attributes).some((v) => String(v).includes(b.connectionId as string) || v === 'room')),
        'no attribute carries a connection id or a group name')

      // Redis gone: a send fails at once as unavailable, and is counted
      const failures = async (operation: string, reason: string): Promise<number> =>
        valueOf((await metricsA.collect()).get('signalr.server.backplane.failures'), { ...base, 'signalr.backplane.operation': operation, 'error.type': reason }) ?? 0
      await redis.kill()
      await until(() => A.logs.some((l) => l.includes('lost the Redis backplane')), 5000)
      const hubA = A.app.signalr.hub(FLEET_PATH)
      await t.rejects(hubA.clients.group('room').send('Receive', 'group', 'while down'), { code: 'FST_SIGNALR_BACKPLANE_UNAVAILABLE' })
      t.equal(await failures('publish', 'unavailable'), 1, 'the failed publish is counted as unavailable')
      t.equal(valueOf((await metricsA.collect()).get('signalr.server.backplane.reconnects'), base) ?? 0, 0, 'no reconnect counted while down')

      // Back: one reconnect for the hub, and delivery resumes
      await redis.restart()
      await until(async () => (valueOf((await metricsA.collect()).get('signalr.server.backplane.reconnects'), base) ?? 0) === 1, 10_000)
      t.pass('one reconnect counted when Redis is back')
      await until(async () => {
        const arrived = nextCall(b, 'Receive', 1000).then(() => true, () => false)
        await a.invoke('Send', 'all', [], 'after').catch(() => {})
        return await arrived
      }, 10_000)
      t.pass('delivery resumed')

      // Paused: Redis holds the publish past commandTimeout, counted as a timeout
      redis.cli('CLIENT', 'PAUSE', String(COMMAND_TIMEOUT * 3), 'ALL')
      await t.rejects(hubA.clients.all.send('Receive', 'all', 'paused'), { code: 'FST_SIGNALR_BACKPLANE_UNAVAILABLE' })
      t.equal(await failures('publish', 'timeout'), 1, 'the publish Redis held is counted as a timeout')
    })
  }

  t.test('without an SDK the backplane still works (the instruments are no-ops)', async (t) => {
    const redis = await startRedis(t)
    const A = await startFleetServer(t, redis, 'node-redis')
    const B = await startFleetServer(t, redis, 'node-redis')
    const b = await connect(t, B.url, { user: 'bob' })
    const a = await connect(t, A.url, { user: 'alice' })
    const arrived = nextCall(b, 'Receive', 5000)
    await a.invoke('Send', 'user', ['bob'], 'hello')
    t.same(await arrived, ['user', 'hello'])
  })
})
