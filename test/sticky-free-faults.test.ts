// Faults under request forwarding (no sticky sessions), on the sticky-free rig: an owner
// killed with kill -9, app.close() on a node, Redis killed and restarted, CLIENT PAUSE, and
// tokens that are forged, expired or replayed. Bounds are generous (the machine is shared);
// the assertions are about who reconnected, how often, and what was delivered.
import t from 'tap'
import { signalR, type ClientOptions } from './fixtures/client.js'
import { withRedis } from './fixtures/redis.js'
import { counts, fleetBehindProxy, PATIENT, tracked, type StickyFleet, type Tracked } from './fixtures/sticky-fleet.js'
import { until } from './fixtures/until.js'

/** How long a client of a dead or closing owner may take to be connected again (the stated bound). */
const RECONNECT_BOUND_MS = 10_000

const TRANSPORTS: Array<[string, ClientOptions]> = [
  ['WebSockets', { transport: 'WebSockets', reconnectPolicy: PATIENT }],
  ['ServerSentEvents', { transport: 'ServerSentEvents', reconnectPolicy: PATIENT }],
  ['LongPolling', { transport: 'LongPolling', reconnectPolicy: PATIENT }]
]

interface Named extends Tracked { name: string }

interface Teardown { teardown (fn: () => unknown): void }

async function clients (t: Teardown, fleet: StickyFleet, perTransport: number): Promise<Named[]> {
  const out: Named[] = []
  for (const [name, o] of TRANSPORTS) for (let i = 0; i < perTransport; i++) out.push({ name, ...await tracked(t, fleet.url, o) })
  return out
}

/** The index of the node that owns each client's connection now. */
async function owners (fleet: StickyFleet, alive: number[], cs: Named[]): Promise<Array<number | undefined>> {
  const ids = new Map<string, number>()
  for (const i of alive) for (const id of (await counts(fleet.nodes[i])).ids) ids.set(id, i)
  return cs.map((c) => ids.get(c.c.connectionId ?? ''))
}

/** Each client sends itself a message through the hub, and gets it: delivery works. */
async function delivers (cs: Named[], text: string): Promise<boolean> {
  const results = await Promise.all(cs.map(async (x) => {
    const before = x.got.get('caller')?.length ?? 0
    try {
      await x.c.invoke('Send', 'caller', [], text)
    } catch {
      return false
    }
    await until(() => (x.got.get('caller')?.length ?? 0) > before, 5000).catch(() => {})
    return x.got.get('caller')?.at(-1) === text
  }))
  return results.every(Boolean)
}

async function eventually (check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise((resolve) => { setTimeout(resolve, 200) })
  }
  return false
}

withRedis(t, () => {
  t.test('app.close() on one node, then kill -9 on another', async (t) => {
    const fleet = await fleetBehindProxy(t)
    const cs = await clients(t, fleet, 2)
    t.ok(await delivers(cs, 'start'), 'every client is served')

    // app.close(): its clients get Close with allowReconnect (without it, the client would not
    // reconnect at all) and come back on another node
    const before = await owners(fleet, [0, 1, 2], cs)
    const closing = 0
    process.kill(fleet.nodes[closing].pid, 'SIGTERM')
    await fleet.nodes[closing].exited
    const moved = cs.filter((_c, i) => before[i] === closing)
    const stayed = cs.filter((_c, i) => before[i] !== closing && before[i] !== undefined)
    t.ok(moved.length > 0 && stayed.length > 0, `clients on the closing node (${moved.length}) and elsewhere (${stayed.length})`)
    t.ok(await eventually(async () => moved.every((x) => x.reconnected.length >= 1), RECONNECT_BOUND_MS), 'each client of the closed node reconnected')
    const after = await owners(fleet, [1, 2], cs)
    t.ok(moved.every((x) => after[cs.indexOf(x)] !== undefined), 'on another node')
    // A lost socket or stream reconnects with an error; a Close message without allowReconnect
    // would not reconnect at all: so this was a Close with allowReconnect
    for (const x of moved.filter((x) => x.name !== 'LongPolling')) {
      t.equal(x.reconnecting.length, 1, `${x.name}: one reconnect`)
      t.equal(x.reconnecting[0], undefined, `${x.name}: after a clean Close from the server, not a lost transport`)
    }
    for (const x of stayed.filter((x) => x.name !== 'LongPolling')) t.equal(x.reconnecting.length, 0, `${x.name} on another node: untouched`)
    // A Long Polling client whose poll the closing node was holding for its owner loses that poll
    for (const x of stayed.filter((x) => x.name === 'LongPolling')) t.ok(x.reconnecting.length <= 1, `LongPolling on another node: at most one reconnect (${x.reconnecting.length})`)
    t.ok(await delivers(cs, 'after close'), 'every client is served again')

    // kill -9 the owner of a Long Polling client
    const now = await owners(fleet, [1, 2], cs)
    const victim = now[cs.findIndex((x) => x.name === 'LongPolling' && now[cs.indexOf(x)] !== undefined)] as number
    const survivor = victim === 1 ? 2 : 1
    const counted = cs.map((x) => x.reconnecting.length)
    const killedAt = Date.now()
    fleet.nodes[victim].kill()
    await fleet.nodes[victim].exited
    const orphans = cs.filter((_c, i) => now[i] === victim)
    t.ok(orphans.length > 0, `clients of the killed node: ${orphans.length}`)
    t.ok(await eventually(async () => orphans.every((x) => x.reconnected.some((r) => r.at >= killedAt)), RECONNECT_BOUND_MS), `each reconnected within ${RECONNECT_BOUND_MS} ms`)
    t.comment(`reconnected after kill -9 in ${Math.max(...orphans.map((x) => (x.reconnected.at(-1)?.at ?? 0) - killedAt))} ms`)
    for (const x of cs.filter((_c, i) => now[i] === survivor)) {
      const extra = x.reconnecting.length - counted[cs.indexOf(x)]
      if (x.name === 'LongPolling') t.ok(extra <= 1, `LongPolling on the surviving node: at most one reconnect (${extra})`)
      else t.equal(extra, 0, `${x.name} on the surviving node: untouched`)
    }
    t.ok(await delivers(cs, 'after kill'), 'every client is served by the last node')
    t.ok(cs.every((x) => x.c.state === signalR.HubConnectionState.Connected && x.closed.length === 0), 'no client gave up')
  })

  t.test('Redis killed and restarted, then CLIENT PAUSE', async (t) => {
    const fleet = await fleetBehindProxy(t, { COMMAND_TIMEOUT_MS: '5000' })
    const cs = await clients(t, fleet, 2)
    t.ok(await delivers(cs, 'start'), 'every client is served')

    await fleet.redis.kill()
    await new Promise((resolve) => { setTimeout(resolve, 1500) })
    await fleet.redis.restart()
    t.ok(await eventually(async () => await delivers(cs, 'after restart'), 20_000), 'delivery resumes on every client')
    t.ok(fleet.nodes.every((n) => n.pid > 0) && (await Promise.all(fleet.nodes.map(counts))).length === 3, 'no node crashed')
    for (const x of cs) {
      if (x.name === 'LongPolling') t.ok(x.reconnecting.length <= 1, `LongPolling: at most one reconnect (${x.reconnecting.length})`)
      else t.equal(x.reconnecting.length, 0, `${x.name}: its stream stayed open`)
    }
    const counted = cs.map((x) => x.reconnecting.length)

    // Writes paused for 3 s: forwarded requests wait, nothing is closed
    fleet.redis.cli('CLIENT', 'PAUSE', '3000', 'WRITE')
    t.ok(await delivers(cs, 'through the pause'), 'every client is served through the pause')
    t.same(cs.map((x) => x.reconnecting.length), counted, 'and no connection was closed')
  })

  t.test('forged, expired and replayed tokens: 404 on every node, and no token in Redis', async (t) => {
    const fleet = await fleetBehindProxy(t, { DISCONNECT_MS: '1000' })
    const nodeUrl = (i: number): string => fleet.nodes[i].url
    const status = async (i: number, method: string, id: string, accept?: string): Promise<number> => {
      const res = await fetch(`${nodeUrl(i)}?id=${encodeURIComponent(id)}`, { method, headers: accept === undefined ? {} : { accept }, body: method === 'POST' ? '{}\x1e' : undefined })
      await res.arrayBuffer()
      return res.status
    }
    const everywhere = async (id: string): Promise<number[]> => {
      const out: number[] = []
      for (const i of [0, 1, 2]) {
        out.push(await status(i, 'GET', id), await status(i, 'POST', id), await status(i, 'DELETE', id))
        if (i === 0) out.push(await status(i, 'GET', id, 'text/event-stream'))
      }
      return out
    }
    const negotiate = async (): Promise<{ connectionId: string, connectionToken: string }> => {
      const res = await fetch(`${nodeUrl(0)}/negotiate?negotiateVersion=1`, { method: 'POST' })
      return await res.json() as { connectionId: string, connectionToken: string }
    }

    t.same(new Set(await everywhere('forged-token-0123456789')), new Set([404]), 'forged: 404')

    const expired = await negotiate()
    const keys = fleet.redis.cli('KEYS', '*')
    t.notOk(keys.includes(expired.connectionToken), 'the token is not in any Redis key')
    for (const k of keys.split('\n').filter((k) => k.includes(':negotiated:'))) t.notOk(fleet.redis.cli('GET', k).includes(expired.connectionToken), 'nor in a value')
    await new Promise((resolve) => { setTimeout(resolve, 1500) })
    t.same(new Set(await everywhere(expired.connectionToken)), new Set([404]), 'expired (never used within disconnectTimeout): 404')

    const used = await negotiate()
    t.equal(await status(1, 'GET', used.connectionToken), 200, 'a fresh token opens on any node (its first poll)')
    t.notOk(fleet.redis.cli('PUBSUB', 'CHANNELS', '*').includes(used.connectionToken), 'the channel it is served on does not show the token')
    t.equal(await status(2, 'DELETE', used.connectionToken), 202, 'DELETE from another node ends it')
    // A Long Polling connection lingers for disconnectTimeout, so that a last poll drains
    await new Promise((resolve) => { setTimeout(resolve, 3000) })
    t.same(new Set(await everywhere(used.connectionToken)), new Set([404]), 'replayed after it ended: 404')
    t.same(new Set(await everywhere(used.connectionId)), new Set([404]), 'its public id: 404')
  })
})
