// The mixed fleet, with the real thing: an ASP.NET Core server using
// Microsoft.AspNetCore.SignalR.StackExchangeRedis 10.0.15 (test/interop/aspnet-redis) beside
// two fastify-signalr servers (node-redis and ioredis) on one redis-server, official JS
// clients on each in JSON and MessagePack. Every target crosses both ways (.NET -> ours and
// ours -> .NET), with remote group add and remove, users, excluded ids and client results;
// and the payloads both kinds of server publish, captured with a subscriber of our own, are
// compared byte for byte. Skipped where there is no dotnet SDK or no redis-server.
import t from 'tap'
import { Redis } from 'ioredis'
import { readAck, readCompletion, readGroupCommand, readInvocation, writeAck, writeCompletion, writeGroupCommand, writeInvocation } from '../lib/lifetime/redis/codec.js'
import { buildProject, dotnetMissing, REDIS_SERVER_DLL, REDIS_SERVER_PROJECT, startReferenceServer } from './fixtures/dotnet.js'
import { join, plan, receivers, sendAndSettle, type Member } from './fixtures/fleet-check.js'
import { FLEET_HUB_NAME, FLEET_PATH, startFleetServer } from './fixtures/fleet.js'
import { TARGETS } from './fixtures/fleet-hub.js'
import { redisMissing, startRedis, type RedisServer } from './fixtures/redis.js'
import { until } from './fixtures/until.js'

interface Captured { channel: string, payload: Buffer }

/**
 * Messages on the named channels, as Redis delivers them. SUBSCRIBE, not PSUBSCRIBE: a
 * pattern subscriber would count as a receiver of every PUBLISH, and "Connection does not
 * exist" depends on that count being zero.
 */
async function capture (t: { teardown (fn: () => unknown): void }, redis: RedisServer): Promise<{ captured: Captured[], add: (...channels: string[]) => Promise<void> }> {
  const sub = new Redis({ host: '127.0.0.1', port: redis.port })
  t.teardown(() => { sub.disconnect() })
  const captured: Captured[] = []
  sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => { captured.push({ channel: channel.toString(), payload }) })
  return { captured, add: async (...channels: string[]) => { await sub.subscribe(...channels) } }
}

const why = dotnetMissing() || redisMissing()
if (why !== false) {
  t.comment(`skipped: ${why}`)
  t.pass(`skipped: ${why}`)
} else {
  t.test('ASP.NET Core and fastify-signalr servers share one Redis fleet', async (t) => {
    const build = await buildProject(REDIS_SERVER_PROJECT)
    if (!build.ok) throw new Error(`dotnet build failed:\n${build.output}`)
    const redis = await startRedis(t)
    const { captured, add } = await capture(t, redis)
    const ch = (name: string): string => `${FLEET_HUB_NAME}:${name}`
    const net = await startReferenceServer(t, { dll: REDIS_SERVER_DLL, args: ['--Redis', `127.0.0.1:${redis.port}`], path: FLEET_PATH })
    const A = await startFleetServer(t, redis, 'node-redis')
    const B = await startFleetServer(t, redis, 'ioredis')
    const m = {
      n1: await join(t, net.url, 'n1', 'alice', 'json'),
      a1: await join(t, A.url, 'a1', 'alice', 'messagepack'),
      b1: await join(t, B.url, 'b1', 'bob', 'json'),
      n2: await join(t, net.url, 'n2', 'bob', 'messagepack'),
      a2: await join(t, A.url, 'a2', 'carol', 'json'),
      b2: await join(t, B.url, 'b2', 'dave', 'messagepack')
    }
    const everyone: Member[] = Object.values(m)
    await add(...['all', 'group:g1', 'group:g2', 'user:alice', 'internal:groups', ...[m.b2, m.n1, m.n2, m.a1].map((x) => `connection:${x.id}`)].map(ch),
      ...[A, B].flatMap((s) => [ch(`internal:ack:${s.backplane.serverName}`), ch(`internal:return:${s.backplane.serverName}`)]))
    // Group joins across kinds of server: .NET -> ours and ours -> .NET, each acked by the owner
    await m.n1.conn.invoke('AddToGroup', m.a1.id, 'g1')
    // The .NET server's name is in its group command: listen to its ack and return channels too
    const netServer = readGroupCommand(captured.find((c) => c.channel === ch('internal:groups'))?.payload ?? Buffer.alloc(0)).serverName
    await add(ch(`internal:ack:${netServer}`), ch(`internal:return:${netServer}`))
    await m.a2.conn.invoke('AddToGroup', m.n2.id, 'g1')
    await m.n2.conn.invoke('AddToGroup', m.b1.id, 'g2')
    await m.b2.conn.invoke('AddToGroup', m.n1.id, 'g2')
    const groups = { g1: [m.a1, m.n2], g2: [m.b1, m.n1] }
    for (const sender of [m.n1, m.a1, m.b1, m.n2]) {
      for (const target of TARGETS) {
        const { names, expected } = plan(target, sender, everyone, groups)
        const counts = await sendAndSettle(sender, everyone, target, names, `${target} from ${sender.name}`)
        t.same(receivers(counts), expected.map((x) => x.name).sort(), `${target} from ${sender.name}`)
      }
    }
    // Remote removes, both ways
    await m.n1.conn.invoke('RemoveFromGroup', m.a1.id, 'g1')
    await m.a1.conn.invoke('RemoveFromGroup', m.n2.id, 'g1')
    t.same(receivers(await sendAndSettle(m.b1, everyone, 'group', ['g1'], 'g1 after removes')), [], 'removed on ours by .NET, and on .NET by ours')

    // Client results, both ways, and the errors
    m.n1.conn.on('Ask', (q: string) => `${q}: n1`)
    m.a1.conn.on('Ask', (q: string) => `${q}: a1`)
    m.n2.conn.on('Ask', () => { throw new Error('n2 refuses') })
    m.b2.conn.on('Ask', () => { throw new Error('b2 refuses') })
    t.equal(await m.a1.conn.invoke('AskClient', m.n1.id, 'ours asks .NET'), 'answer: ours asks .NET: n1')
    t.equal(await m.n1.conn.invoke('AskClient', m.a1.id, '.NET asks ours'), 'answer: .NET asks ours: a1')
    const error = async (caller: Member, id: string): Promise<string> => await caller.conn.invoke('AskClient', id, 'q').then(() => 'no error', (e: Error) => e.message)
    const hubEx = (text: string): string => `An unexpected error occurred invoking 'AskClient' on the server. HubException: ${text}`
    t.equal(await error(m.a1, m.n2.id), hubEx('Error: n2 refuses'), 'a .NET client\'s error reaches our caller')
    t.equal(await error(m.n1, m.b2.id), hubEx('Error: b2 refuses'), 'our client\'s error reaches the .NET caller')
    t.equal(await error(m.n1, 'nobody'), hubEx("Connection 'nobody' does not exist."), 'ASP.NET Core: an id that is nowhere')
    t.equal(await error(m.a1, 'nobody'), hubEx("Connection 'nobody' does not exist."), 'ours: the same words')
    // The answering client disconnects first, on each kind of server
    const disconnectFirst = async (caller: Member, url: string): Promise<string> => {
      const victim = await join(t, url, 'victim', 'eve', 'json')
      // ASP.NET Core subscribes a connection's channel only after the handshake it has already
      // answered (OnConnectedAsync follows it), so a call sent at once can find no subscriber
      // there: wait until the victim's owner listens, as any sender in a fleet must
      const channel = `${FLEET_HUB_NAME}:connection:${victim.id}`
      await until(() => Number(redis.cli('PUBSUB', 'NUMSUB', channel).split('\n')[1]) >= 1, 30_000)
      let asked = false
      victim.conn.on('Ask', () => { asked = true; return new Promise(() => {}) })
      const answer = error(caller, victim.id)
      await until(() => asked)
      await victim.conn.stop()
      return await answer
    }
    const oursDisconnect = await disconnectFirst(m.n1, A.url)
    const netDisconnect = await disconnectFirst(m.a1, net.url)
    t.equal(oursDisconnect, netDisconnect, `a client that disconnects first: the same error from both kinds of owner (${netDisconnect})`)

    // Byte for byte: the same send published by ASP.NET Core and by us
    const same = async (target: string, names: string[], text: string): Promise<void> => {
      const from = captured.length
      await m.n1.conn.invoke('Send', target, names, text)
      await m.a2.conn.invoke('Send', target, names, text)
      await until(() => captured.slice(from).filter((c) => !c.channel.includes(':internal:')).length >= 2)
      const [net, ours] = captured.slice(from).filter((c) => !c.channel.includes(':internal:'))
      t.equal(ours.channel, net.channel, `${target}: the same channel (${net.channel})`)
      t.same([...ours.payload], [...net.payload], `${target}: the same bytes (${net.payload.toString('hex').slice(0, 48)}...)`)
    }
    await same('all', [], 'bytes')
    await same('allExcept', [m.b1.id, m.b2.id], 'bytes except')
    await same('group', ['g2'], 'bytes group')
    await same('groupExcept', ['g2', m.b1.id], 'bytes group except')
    await same('user', ['alice'], 'bytes user')
    await same('client', [m.b2.id], 'bytes connection')
    // Group commands, acks, client-result invocations and completions: the fields differ
    // (ids, server names), so each .NET payload is read and written back by our codec, and
    // must come out identical; and ours must read back to what .NET would have written
    const internal = captured.filter((c) => c.channel.includes(':internal:'))
    const kinds = new Map<string, number>()
    for (const c of captured) {
      let rewritten: Buffer | undefined
      if (c.channel.endsWith(':internal:groups')) rewritten = writeGroupCommand(readGroupCommand(c.payload))
      else if (c.channel.includes(':internal:ack:')) rewritten = writeAck(readAck(c.payload))
      else if (c.channel.includes(':internal:return:')) rewritten = writeCompletion(readCompletion(c.payload))
      else {
        const inv = readInvocation(c.payload)
        rewritten = writeInvocation({ serialized: inv.serialized, excluded: inv.excluded, invocationId: inv.invocationId, returnChannel: inv.returnChannel })
        if (inv.returnChannel !== undefined) kinds.set('client-result invocation', (kinds.get('client-result invocation') ?? 0) + 1)
      }
      const kind = c.channel.replace(`${FLEET_HUB_NAME}:`, '').split(':').slice(0, c.channel.includes(':internal:') ? 2 : 1).join(':')
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
      if (!rewritten.equals(c.payload)) t.fail(`${c.channel}: our codec does not reproduce ${c.payload.toString('hex')}`)
    }
    t.ok(internal.length > 0 && (kinds.get('client-result invocation') ?? 0) >= 4, `every payload read and written back identically: ${JSON.stringify(Object.fromEntries(kinds))}`)
    for (const k of ['internal:groups', 'internal:ack', 'internal:return', 'all', 'group', 'user', 'connection']) t.ok((kinds.get(k) ?? 0) > 0, `captured ${k} payloads`)
  })

  t.test('with a StackExchange.Redis ChannelPrefix on both kinds of server', async (t) => {
    const build = await buildProject(REDIS_SERVER_PROJECT)
    if (!build.ok) throw new Error(`dotnet build failed:\n${build.output}`)
    const redis = await startRedis(t)
    const { captured, add } = await capture(t, redis)
    await add(`tenant7.${FLEET_HUB_NAME}:all`)
    const net = await startReferenceServer(t, { dll: REDIS_SERVER_DLL, args: ['--Redis', `127.0.0.1:${redis.port}`, '--ChannelPrefix', 'tenant7.'], path: FLEET_PATH })
    const A = await startFleetServer(t, redis, 'ioredis', { channelPrefix: 'tenant7.' })
    const n = await join(t, net.url, 'n', 'alice', 'json')
    const a = await join(t, A.url, 'a', 'bob', 'messagepack')
    t.same(receivers(await sendAndSettle(n, [n, a], 'all', [], 'prefixed')), ['a', 'n'])
    t.same(receivers(await sendAndSettle(a, [n, a], 'user', ['alice'], 'prefixed user')), ['n'])
    n.conn.on('Ask', () => 'from n')
    a.conn.on('Ask', () => 'from a')
    t.equal(await a.conn.invoke('AskClient', n.id, 'q'), 'answer: from n', 'the result comes back on the prefixed return channel')
    t.equal(await n.conn.invoke('AskClient', a.id, 'q'), 'answer: from a')
    t.ok(captured.some((c) => c.channel === `tenant7.${FLEET_HUB_NAME}:all`), 'the prefix is put in front of the hub name, as StackExchange.Redis does')
  })
}
