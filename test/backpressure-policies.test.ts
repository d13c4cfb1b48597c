// The per-send backpressure policies beside a client that stopped reading: `volatile` drops
// the message for it, `latest(key)` holds only the newest message per key for it, and neither
// makes the sender wait or holds up the official clients that read. What the server holds
// is measured in bytes and counts (its socket's bufferedAmount and the connection's held
// messages), never by heap readings.
//
// As in slow-consumer.test.ts the stalled client pauses its TCP socket, and each test first
// fills what the kernel absorbs with sends to it alone, so that the server holds more than
// transportMaxBufferSize for it: from then on it is congested.
import { setImmediate as yieldToIo } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import Type from 'typebox'
import type { WebSocket as ServerSocket } from 'ws'
import WebSocket from 'ws'
import { defineHub, type HubContext } from '../index.js'
import { readInvocation, writeInvocation } from '../lib/lifetime/redis/codec.js'
import { redisBackplane } from '../lib/lifetime/redis/index.js'
import { registryOf } from '../lib/registry.js'
import { connect, record, type signalR } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'
import { openRawJson, serverSocketOf } from './fixtures/raw-json.js'
import { redisClient, redisMissing, startRedis } from './fixtures/redis.js'
import { until } from './fixtures/until.js'

const path = '/hubs/policies'
const MAX_BUFFER = 64 * 1024
const CAP = 4 * MAX_BUFFER

const disconnects = new Map<string, Error | undefined>()
const hub = defineHub({
  methods: {
    Join: { args: [Type.String()], async handler (ctx, group) { await ctx.groups.add(ctx.connectionId, group) } }
  },
  onDisconnected (ctx, error) { disconnects.set(ctx.connectionId, error) }
})

/** A raw JSON client that keeps every Invocation it gets as [target, ...arguments]. */
interface RawReader {
  ws: WebSocket
  connectionId: string
  token: string
  calls: unknown[][]
}

async function rawReader (base: string): Promise<RawReader> {
  const r: RawReader = { ...await openRawJson(base, path), calls: [] }
  r.ws.on('message', (data: Buffer) => {
    for (const text of data.toString().split('\u001e')) {
      if (text === '') continue
      const m = JSON.parse(text) as { type: number, target?: string, arguments?: unknown[] }
      if (m.type === 1) r.calls.push([m.target, ...(m.arguments ?? [])])
    }
  })
  return r
}

function tcp (ws: WebSocket): { pause: () => void, resume: () => void } {
  return (ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
}

interface Setup {
  app: FastifyInstance
  /** Where the policy sends are made: the same app, or with Redis another server of the fleet. */
  sender: HubContext
  stalled: RawReader
  stalledSocket: ServerSocket
  fast: signalR.HubConnection[]
  fills: number
  /** The stalled connection's held messages and drops. */
  stats: () => { heldMessages: number, heldBytes: number, volatileDrops: number }
}

type T = Parameters<typeof startServer>[0]

async function setup (t: T, fastCount = 3, redis?: Awaited<ReturnType<typeof startRedis>>): Promise<Setup> {
  const start = async (): Promise<Awaited<ReturnType<typeof startServer>>> => await startServer(t, {
    hub,
    path,
    // A send timeout far longer than each test: the stalled client stays connected
    plugin: {
      transportSendTimeout: 60_000,
      transportMaxBufferSize: MAX_BUFFER,
      keepAliveInterval: 60_000,
      ...(redis === undefined ? {} : { backplane: redisBackplane({ client: await redisClient(t, redis, 'node-redis'), hubName: 'Policies' }) })
    }
  })
  const { app, base, url } = await start()
  const senderApp = redis === undefined ? app : (await start()).app
  const fast = await Promise.all(Array.from({ length: fastCount }, async () => await connect(t, url)))
  for (const c of fast) await c.invoke('Join', 'g')
  const stalled = await rawReader(base)
  t.teardown(() => { stalled.ws.terminate() })
  await app.signalr.hub(path).groups.add(stalled.connectionId, 'g')
  const stalledSocket = serverSocketOf(app, stalled.ws)
  tcp(stalled.ws).pause()
  // Fill the kernel's buffers, then hold more than transportMaxBufferSize in the server
  const chunk = 'f'.repeat(8 * 1024)
  let fills = 0
  while (stalledSocket.bufferedAmount <= MAX_BUFFER) {
    if (fills * chunk.length > 20 * 1024 * 1024) throw new Error('the kernel absorbed more than 20 MiB: cannot stall the client')
    await app.signalr.hub(path).clients.client(stalled.connectionId).send('Fill', chunk)
    fills++
    await yieldToIo()
  }
  const connection = registryOf(app.signalr).connection(stalled.token)
  if (connection === undefined) throw new Error('the stalled connection is not registered')
  return { app, sender: senderApp.signalr.hub(path), stalled, stalledSocket, fast, fills, stats: () => connection.policyStats }
}

/** Reads again and waits until every Fill and then the End marker has arrived. */
async function readAgain (s: Setup): Promise<void> {
  tcp(s.stalled.ws).resume()
  // What `latest` holds goes out once the backlog is under transportMaxBufferSize
  await until(() => s.stats().heldMessages === 0, 10_000)
  // A plain send made now is queued behind everything flushed before it
  await s.app.signalr.hub(path).clients.client(s.stalled.connectionId).send('End')
  await until(() => s.stalled.calls.some((c) => c[0] === 'End'), 10_000)
}

test('latest(key): the stalled client gets only the newest value per key once it reads again; readers get every one', async (t) => {
  const s = await setup(t)
  const ctx = s.app.signalr.hub(path)
  const got = s.fast.map((c) => record(c, 'Tick'))
  const before = s.stalledSocket.bufferedAmount
  const keys = ['AAPL', 'MSFT', 'NVDA']
  const rounds = 300
  let maxHeld = 0
  for (let i = 0; i < rounds; i++) {
    for (const key of keys) await ctx.clients.all.latest(key).send('Tick', key, i, 'p'.repeat(200))
    maxHeld = Math.max(maxHeld, s.stats().heldBytes)
    if (i % 20 === 19) await yieldToIo()
  }
  const oneMessage = Buffer.byteLength(JSON.stringify({ type: 1, target: 'Tick', arguments: ['AAPL', rounds - 1, 'p'.repeat(200)] })) + 1
  t.equal(s.stats().heldMessages, keys.length, 'one message held per key')
  t.ok(maxHeld <= keys.length * oneMessage, `held for the stalled client: at most one message per key (${maxHeld} bytes for ${rounds * keys.length} sends)`)
  t.equal(s.stalledSocket.bufferedAmount, before, 'nothing was added to its socket while it did not read')

  await until(() => got.every((g) => g.length === rounds * keys.length), 10_000)
  for (const g of got) {
    const expected = Array.from({ length: rounds }, (_, i) => keys.map((k) => [k, i])).flat()
    t.same(g.map((args) => [args[0], args[1]]), expected, 'a reader gets every value, in order')
  }

  await readAgain(s)
  const ticks = s.stalled.calls.filter((c) => c[0] === 'Tick').map((c) => [c[1], c[2]])
  t.same(ticks, keys.map((k) => [k, rounds - 1]), 'the stalled client got the last value of each key, once, in key order')
  t.equal(s.stalled.calls.filter((c) => c[0] === 'Fill').length, s.fills, 'and every plain send it was owed before them')
  t.equal(disconnects.has(s.stalled.connectionId), false, 'it was never cut')
})

test('latest(key): a newer value moves its key behind keys sent since', async (t) => {
  const s = await setup(t, 1)
  const group = s.app.signalr.hub(path).clients.group('g')
  await group.latest('a').send('Tick', 'a', 1)
  await group.latest('b').send('Tick', 'b', 1)
  await group.latest('a').send('Tick', 'a', 2)
  t.equal(s.stats().heldMessages, 2)
  await readAgain(s)
  t.same(s.stalled.calls.filter((c) => c[0] === 'Tick').map((c) => [c[1], c[2]]), [['b', 1], ['a', 2]], 'values arrive in the order they were last sent')
})

test('volatile: the stalled client is skipped without holding anything; readers get every message; the sender does not wait', async (t) => {
  const s = await setup(t)
  const ctx = s.app.signalr.hub(path)
  const got = s.fast.map((c) => record(c, 'Cursor'))
  const before = s.stalledSocket.bufferedAmount
  const count = 500
  const started = Date.now()
  for (let i = 0; i < count; i++) {
    await ctx.clients.group('g').volatile.send('Cursor', i, 'c'.repeat(500))
    if (i % 20 === 19) await yieldToIo()
  }
  t.comment(`500 volatile sends took ${Date.now() - started} ms with a stalled member`)
  t.equal(s.stats().volatileDrops, count, 'every volatile send was dropped for the stalled client')
  t.equal(s.stats().heldBytes, 0, 'and nothing is held for it')
  t.equal(s.stalledSocket.bufferedAmount, before, 'nor added to its socket')
  await until(() => got.every((g) => g.length === count), 10_000)
  for (const g of got) t.same(g.map((args) => args[0]), Array.from({ length: count }, (_, i) => i), 'a reader gets every message, in order')

  await readAgain(s)
  t.equal(s.stalled.calls.filter((c) => c[0] === 'Cursor').length, 0, 'the stalled client got none of them')
  t.equal(s.stalled.calls.filter((c) => c[0] === 'Fill').length, s.fills, 'but every plain send')
  // Reading again, it is no longer skipped
  await ctx.clients.client(s.stalled.connectionId).volatile.send('Cursor', -1)
  await until(() => s.stalled.calls.some((c) => c[0] === 'Cursor'), 5000)
  t.same(s.stalled.calls.filter((c) => c[0] === 'Cursor').map((c) => c[1]), [-1], 'a volatile send reaches it once it has caught up')
})

test('latest(key) over many distinct keys is still bounded: the hard cap cuts the stalled client', async (t) => {
  disconnects.clear()
  const s = await setup(t, 1)
  const ctx = s.app.signalr.hub(path)
  const body = 'k'.repeat(1024)
  let maxHeld = 0
  // 2000 distinct keys × 1 KiB: 2 MiB if every key were held
  for (let i = 0; i < 2000 && s.stalledSocket.readyState === WebSocket.OPEN; i++) {
    await ctx.clients.all.latest(`key-${i}`).send('Tick', i, body)
    maxHeld = Math.max(maxHeld, s.stats().heldBytes)
    if (i % 20 === 19) await yieldToIo()
  }
  t.comment(`held at most ${maxHeld} bytes before the cut (hard cap ${CAP})`)
  await until(() => disconnects.has(s.stalled.connectionId), 5000)
  t.match(disconnects.get(s.stalled.connectionId), { code: 'FST_SIGNALR_OUTBOUND_BUFFER_FULL' }, 'closed by the hard cap')
  t.ok(maxHeld + s.stalledSocket.bufferedAmount <= CAP + 1100, 'held and unsent bytes together never passed the cap by more than one message')
  t.equal(s.stats().heldBytes, 0, 'nothing is held once it is gone')
})

test('a policy key is checked like a name', async (t) => {
  const { app } = await startServer(t, { hub, path })
  const all = app.signalr.hub(path).clients.all
  t.throws(() => all.latest(''), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  t.throws(() => all.latest('x'.repeat(1025)), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  t.throws(() => all.latest(7 as unknown as string), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
})

test('codec: a policy rides as a fifth item that .NET servers read past', async (t) => {
  const serialized = [['json', Buffer.from('{"type":1,"target":"T","arguments":[]}\u001e')] as const]
  const plain = writeInvocation({ serialized, excluded: ['x'] })
  const latest = writeInvocation({ serialized, excluded: ['x'], policy: { kind: 'latest', key: 'AAPL' } })
  const volatile = writeInvocation({ serialized, policy: { kind: 'volatile' } })
  t.equal(plain[0], 0x92, 'a plain send stays the 2-item array ASP.NET Core writes')
  t.equal(latest[0], 0x95, 'with a policy: 5 items')
  // What a .NET server reads: items 3 and 4 are nil (no client result), the rest is ignored
  t.same(latest.subarray(1, plain.length), plain.subarray(1), 'the first two items are byte for byte a plain send')
  t.same([...latest.subarray(plain.length, plain.length + 2)], [0xc0, 0xc0], 'then nil invocation id and return channel')
  t.same(readInvocation(latest).policy, { kind: 'latest', key: 'AAPL' })
  t.same(readInvocation(volatile).policy, { kind: 'volatile' })
  t.equal(readInvocation(latest).invocationId, undefined, 'not mistaken for a client result')
  t.equal(readInvocation(plain).policy, undefined)
  // An unknown kind (a newer server's) is a plain send, not an error
  const unknown = Buffer.concat([Buffer.from([0x95]), plain.subarray(1), Buffer.from([0xc0, 0xc0, 0x91, 0x09])])
  t.equal(readInvocation(unknown).policy, undefined)
  t.throws(() => readInvocation(Buffer.concat([Buffer.from([0x95]), plain.subarray(1), Buffer.from([0xc0, 0xc0, 0x92, 0x02])])), { code: 'FST_SIGNALR_INVALID_MESSAGE' }, 'a truncated key is refused')
})

const noRedis = redisMissing()
test('over the Redis backplane: sends made on one server keep their policy on the server that holds the stalled client', { skip: noRedis === false ? undefined : `redis-server: ${noRedis}` }, async (t) => {
  const redis = await startRedis(t)
  const s = await setup(t, 2, redis)
  t.not(s.sender, s.app.signalr.hub(path), 'sends are made on the other server')
  const ticks = s.fast.map((c) => record(c, 'Tick'))
  const cursors = s.fast.map((c) => record(c, 'Cursor'))
  const before = s.stalledSocket.bufferedAmount
  const rounds = 100
  for (let i = 0; i < rounds; i++) {
    await s.sender.clients.all.latest('k1').send('Tick', 'k1', i)
    await s.sender.clients.group('g').latest('k2').send('Tick', 'k2', i)
    await s.sender.clients.group('g').volatile.send('Cursor', i)
  }
  // Redis delivers one channel in order: once the readers have the last ones, so has the stalled client's server
  await until(() => ticks.every((g) => g.length === 2 * rounds) && cursors.every((g) => g.length === rounds), 10_000)
  t.same(s.stats(), { heldMessages: 2, heldBytes: s.stats().heldBytes, volatileDrops: rounds }, 'two keys held, every volatile send dropped')
  t.equal(s.stalledSocket.bufferedAmount, before, 'nothing added to the stalled socket')
  await readAgain(s)
  t.same(s.stalled.calls.filter((c) => c[0] === 'Tick').map((c) => [c[1], c[2]]), [['k1', rounds - 1], ['k2', rounds - 1]], 'the stalled client got the last value per key')
  t.equal(s.stalled.calls.filter((c) => c[0] === 'Cursor').length, 0, 'and no volatile message')
})
