// Two fastify-signalr servers on one real redis-server, with official clients (JSON and
// MessagePack) on each: every `clients` target crosses servers both ways, for node-redis and
// ioredis at their current and previous majors; group changes, users and client results
// across servers; reference-counted subscriptions; fleet-wide presence and remote close.
import t from 'tap'
import { connect } from './fixtures/client.js'
import { join as joinUrl, plan, receivers, sendAndSettle, type Member } from './fixtures/fleet-check.js'
import { FLEET_HUB_NAME, FLEET_PATH, spawnFleetServer, startFleetServer, type FleetServer } from './fixtures/fleet.js'

async function join (t: { teardown (fn: () => unknown): void }, server: FleetServer, name: string, user: string, protocol: 'json' | 'messagepack'): Promise<Member> {
  return await joinUrl(t, server.url, name, user, protocol)
}
import { TARGETS } from './fixtures/fleet-hub.js'
import { CLIENT_KINDS, numsub, startRedis, type ClientKind, withRedis } from './fixtures/redis.js'
import { until } from './fixtures/until.js'
import { registryOf } from '../lib/registry.js'

withRedis(t, run)

function run (): void {
  for (const kind of CLIENT_KINDS) {
    t.test(`${kind}: every target crosses servers both ways, JSON and MessagePack`, async (t) => {
      const redis = await startRedis(t)
      const A = await startFleetServer(t, redis, kind)
      const B = await startFleetServer(t, redis, kind)
      const m: Record<string, Member> = {
        a1: await join(t, A, 'a1', 'alice', 'json'),
        a2: await join(t, A, 'a2', 'bob', 'messagepack'),
        b1: await join(t, B, 'b1', 'alice', 'messagepack'),
        b2: await join(t, B, 'b2', 'carol', 'json')
      }
      // Groups joined from the other server: a group command, then the owner's ack
      await m.b2.conn.invoke('AddToGroup', m.a1.id, 'g1')
      await m.a2.conn.invoke('AddToGroup', m.b1.id, 'g1')
      await m.a1.conn.invoke('AddToGroup', m.b2.id, 'g2')
      await m.b1.conn.invoke('AddToGroup', m.a2.id, 'g2')
      const groups = { g1: [m.a1, m.b1], g2: [m.a2, m.b2] }
      // (picks by position: client = b2, clients = a2 + b1, allExcept = all but a1 and b2)
      const everyone = Object.values(m)
      for (const sender of [m.a1, m.b2, m.a2, m.b1]) {
        for (const target of TARGETS) {
          const { names, expected } = plan(target, sender, everyone, groups)
          const counts = await sendAndSettle(sender, everyone, target, names, `${target} from ${sender.name}`)
          t.same(receivers(counts), expected.map((x) => x.name).sort(), `${target} from ${sender.name}`)
          t.ok(everyone.every((x) => (counts.get(x) ?? 0) <= 1), `${target} from ${sender.name}: at most once each`)
        }
      }
      // A remote remove takes effect (and is acked) too
      await m.b2.conn.invoke('RemoveFromGroup', m.a1.id, 'g1')
      const counts = await sendAndSettle(m.b2, everyone, 'group', ['g1'], 'after remove')
      t.same(receivers(counts), ['b1'], 'a remote remove took a1 out of g1')
      // What the receivers saw has the arguments the sender sent, in both protocols
      t.same(m.a2.got.find((g) => g[1] === 'all from b1'), ['all', 'all from b1'])
      t.same(m.a1.got.find((g) => g[1] === 'all from b1'), ['all', 'all from b1'])
    })
  }

  t.test('one sender\'s messages arrive in order on every server', async (t) => {
    const redis = await startRedis(t)
    const A = await startFleetServer(t, redis, 'ioredis')
    const B = await startFleetServer(t, redis, 'node-redis')
    const a = await join(t, A, 'a', 'alice', 'json')
    const b = await join(t, B, 'b', 'alice', 'messagepack')
    await a.conn.invoke('AddToGroup', a.id, 'g')
    await a.conn.invoke('AddToGroup', b.id, 'g')
    const targets: Array<[string, string[]]> = [['all', []], ['group', ['g']], ['user', ['alice']]]
    const sends: Array<Promise<unknown>> = []
    // Fire-and-forget sends, as a chatty client makes them: the server runs them in order
    for (let i = 0; i < 150; i++) {
      const [target, names] = targets[i % 3]
      sends.push(a.conn.send('Send', target, names, `m${i}`))
    }
    await Promise.all(sends)
    await until(() => a.got.length >= 150 && b.got.length >= 150, 10_000)
    const expected = Array.from({ length: 150 }, (_, i) => `m${i}`)
    t.same(a.got.map((g) => g[1]), expected, 'the local receiver saw them in order')
    t.same(b.got.map((g) => g[1]), expected, 'the remote receiver saw them in order')
  })

  t.test('client results cross servers and come back; ASP.NET Core\'s errors when they cannot', async (t) => {
    const redis = await startRedis(t)
    const A = await startFleetServer(t, redis, 'node-redis')
    const B = await startFleetServer(t, redis, 'ioredis')
    const a = await join(t, A, 'a', 'alice', 'json')
    const b = await join(t, B, 'b', 'bob', 'messagepack')
    const b2 = await join(t, B, 'b2', 'bob', 'json')
    b.conn.on('Ask', (q: string) => `${q}? yes`)
    b2.conn.on('Ask', () => { throw new Error('no way') })
    t.equal(await a.conn.invoke('AskClient', b.id, 'remote'), 'answer: remote? yes', 'a result from a client on the other server')
    await t.rejects(a.conn.invoke('AskClient', b2.id, 'x'), /no way/, 'the client\'s error comes back')
    const hub = A.app.signalr.hub(FLEET_PATH)
    await t.rejects(hub.clients.client('nobody-has-this-id').invoke('Ask', 'x'), { message: "Connection 'nobody-has-this-id' does not exist.", code: 'FST_SIGNALR_CLIENT_RESULT' })
    await t.rejects(a.conn.invoke('AskClient', 'nobody-has-this-id', 'x'), /An unexpected error occurred invoking 'AskClient' on the server\./, 'the caller of a hub method sees ASP.NET Core\'s generic text')
    // The client disconnects before it answers
    const b3 = await join(t, B, 'b3', 'bob', 'json')
    let asked = false
    b3.conn.on('Ask', () => { asked = true; return new Promise(() => {}) })
    const pending = hub.clients.client(b3.id).invoke('Ask', 'q')
    pending.catch(() => {})
    await until(() => asked)
    await b3.conn.stop()
    await t.rejects(pending, { message: 'Connection disconnected.' })
    // Across servers the caller's server keeps nothing afterwards
    const manager = (registryOf(A.app.signalr) as unknown as { hubs: Map<string, { lifetime: { indexSizes: () => Record<string, number> } }> }).hubs.get(FLEET_PATH)?.lifetime
    t.equal(manager?.indexSizes().pendingResults, 0, 'no pending result left on the caller\'s server')
  })

  t.test('a group change for a connection no server owns fails once ackTimeout passes', async (t) => {
    const redis = await startRedis(t)
    const A = await startFleetServer(t, redis, 'ioredis', { ackTimeout: 300 })
    const hub = A.app.signalr.hub(FLEET_PATH)
    const started = Date.now()
    await t.rejects(hub.groups.add('ghost', 'g'), { code: 'FST_SIGNALR_BACKPLANE_ACK_TIMEOUT' })
    t.ok(Date.now() - started >= 290, 'it waited for the ack timeout')
    await t.rejects(hub.groups.remove('ghost', 'g'), { code: 'FST_SIGNALR_BACKPLANE_ACK_TIMEOUT' })
  })

  t.test('group and user channels are subscribed only while a local member needs them', async (t) => {
    const redis = await startRedis(t)
    const A = await startFleetServer(t, redis, 'node-redis')
    const B = await startFleetServer(t, redis, 'ioredis')
    const ch = (s: string): string => `${FLEET_HUB_NAME}:${s}`
    const a1 = await join(t, A, 'a1', 'alice', 'json')
    const a2 = await join(t, A, 'a2', 'alice', 'json')
    const b1 = await join(t, B, 'b1', 'bob', 'json')
    await until(() => numsub(redis, [ch('user:bob')]).get(ch('user:bob')) === 1 && numsub(redis, [ch(`connection:${a2.id}`)]).get(ch(`connection:${a2.id}`)) === 1)
    t.same(numsub(redis, [ch('user:alice'), ch('user:bob'), ch('all'), ch(`connection:${a1.id}`)]),
      new Map([[ch('user:alice'), 1], [ch('user:bob'), 1], [ch('all'), 2], [ch(`connection:${a1.id}`), 1]]))
    await a1.conn.invoke('AddToGroup', a1.id, 'g')
    await a2.conn.invoke('AddToGroup', a2.id, 'g')
    t.equal(numsub(redis, [ch('group:g')]).get(ch('group:g')), 1, 'two local members: one subscription')
    await b1.conn.invoke('AddToGroup', b1.id, 'g')
    t.equal(numsub(redis, [ch('group:g')]).get(ch('group:g')), 2, 'one per server')
    await a1.conn.invoke('RemoveFromGroup', a1.id, 'g')
    t.equal(numsub(redis, [ch('group:g')]).get(ch('group:g')), 2, 'A still has a member')
    await a2.conn.stop()
    await until(() => numsub(redis, [ch('group:g')]).get(ch('group:g')) === 1)
    t.pass('the last local member leaving (by disconnecting) unsubscribes A')
    t.equal(numsub(redis, [ch('user:alice')]).get(ch('user:alice')), 1, 'alice still has a1 on A')
    await a1.conn.stop()
    await until(() => numsub(redis, [ch('user:alice'), ch(`connection:${a1.id}`)]).get(ch('user:alice')) === 0)
    t.equal(numsub(redis, [ch(`connection:${a1.id}`)]).get(ch(`connection:${a1.id}`)), 0, 'the connection channel went with it')
  })

  t.test('presence is answered fleet-wide, and hub.close(id) reaches another server', async (t) => {
    const redis = await startRedis(t)
    const A = await startFleetServer(t, redis, 'ioredis')
    const B = await startFleetServer(t, redis, 'node-redis')
    const a1 = await join(t, A, 'a1', 'alice', 'json')
    const b1 = await join(t, B, 'b1', 'alice', 'messagepack')
    const b2 = await join(t, B, 'b2', 'bob', 'json')
    await a1.conn.invoke('AddToGroup', b1.id, 'room')
    await a1.conn.invoke('AddToGroup', a1.id, 'room')
    const hubA = A.app.signalr.hub(FLEET_PATH)
    t.same((await hubA.groupMembers('room')).sort(), [a1.id, b1.id].sort(), 'group members on both servers')
    t.same((await hubA.userConnections('alice')).sort(), [a1.id, b1.id].sort(), 'a user\'s connections on both servers')
    t.equal(await hubA.connectionCount(), 3)
    t.same((await hubA.connections()).sort(), [a1.id, b1.id, b2.id].sort())
    t.same(await hubA.groupsOf(b1.id), ['room'], 'the groups of a connection on the other server')
    t.equal(await hubA.isUserOnline('bob'), true)

    const closed = new Promise<Error | undefined>((resolve) => { b2.conn.onclose(resolve) })
    await hubA.close(b2.id, { error: 'moved' })
    t.match((await closed)?.message, /Connection closed with an error\. HubException: moved/, 'closed on B, with the reason')
    await until(async () => (await hubA.connectionCount()) === 2)
    t.equal(await hubA.isUserOnline('bob'), false)
    await hubA.close('nobody', {})
    t.pass('closing an unknown id is a no-op')
  })

  t.test('a crashed server\'s presence disappears within the stated bound', async (t) => {
    const redis = await startRedis(t)
    const heartbeat = 300
    const A = await startFleetServer(t, redis, 'ioredis', { heartbeatInterval: heartbeat })
    const child = await spawnFleetServer(t, redis.port, { HEARTBEAT_MS: String(heartbeat) })
    const c = await connect(t, child.url, { user: 'zed' })
    await c.invoke('AddToGroup', c.connectionId as string, 'doomed')
    const hubA = A.app.signalr.hub(FLEET_PATH)
    t.same(await hubA.groupMembers('doomed'), [c.connectionId])
    t.equal(await hubA.isUserOnline('zed'), true)
    const bound = A.backplane.presenceExpiryMs
    child.kill()
    const killedAt = Date.now()
    await child.exited
    await until(async () => (await hubA.groupMembers('doomed')).length === 0 && !(await hubA.isUserOnline('zed')), bound + 2000)
    const took = Date.now() - killedAt
    t.ok(took <= bound + 250, `gone from every answer ${took} ms after kill -9 (bound: 3 heartbeats = ${bound} ms)`)
    // The next heartbeats of the survivor collect the dead server's keys as well
    const servers = (): string => redis.cli('SMEMBERS', `${FLEET_HUB_NAME}:fastify-signalr:servers`)
    await until(() => redis.cli('SMEMBERS', `${FLEET_HUB_NAME}:fastify-signalr:group:doomed`) === '' && servers() === A.backplane.serverName, bound * 3)
    t.equal(redis.cli('EXISTS', `${FLEET_HUB_NAME}:fastify-signalr:user:zed`), '0', 'the dead server\'s index entries are deleted')
    t.equal(servers(), A.backplane.serverName, 'only the survivor is listed')
  })

  t.test('options are validated with clear errors', async (t) => {
    const { redisBackplane } = await import('../lib/lifetime/redis/index.js')
    t.throws(() => redisBackplane({ client: {} }), { code: 'FST_SIGNALR_INVALID_OPTION', message: /'client'/ })
    const redis = await startRedis(t)
    const { redisClient } = await import('./fixtures/redis.js')
    const client = await redisClient(t, redis, 'ioredis' as ClientKind)
    t.throws(() => redisBackplane({ client, ackTimeout: 0 }), { code: 'FST_SIGNALR_INVALID_OPTION', message: /ackTimeout/ })
    t.throws(() => redisBackplane({ client, serverName: 'has space' }), { code: 'FST_SIGNALR_INVALID_OPTION', message: /serverName/ })
    t.throws(() => redisBackplane({ client, hubname: 'x' } as never), { code: 'FST_SIGNALR_INVALID_OPTION', message: /'hubname': is not a known option/ })
    const { createClient } = await import('redis')
    t.throws(() => redisBackplane({ client: createClient() }), { code: 'FST_SIGNALR_INVALID_OPTION', message: /not connected/ })
  })
}
