// No sticky sessions (redisBackplane({ forwarding: true })): three server processes on one
// redis-server behind a round-robin proxy that never sends two consecutive requests of a
// connection to the same node. The official JS client, on every transport (and WebSockets
// with skipNegotiation), makes sequence-numbered calls while broadcasts go out: every
// connection gets each of its messages once, in order, with no gap; every node both
// forwarded requests and served forwarded ones; no client was told 404.
import t from 'tap'
import { signalR } from './fixtures/client.js'
import { withRedis } from './fixtures/redis.js'
import { CONFIGS, counts, fleetBehindProxy, tracked } from './fixtures/sticky-fleet.js'
import { until } from './fixtures/until.js'

const range = (n: number, prefix = ''): string[] => Array.from({ length: n }, (_v, i) => prefix + String(i))

withRedis(t, () => {
  t.test('any node serves any request: order kept, nothing lost or doubled, on every transport', async (t) => {
    const { nodes, proxy, url } = await fleetBehindProxy(t)
    const PER_CONFIG = 1
    const SEQ = 40
    const BROADCASTS = 30
    const clients: Array<{ name: string, c: signalR.HubConnection, got: Map<string, string[]>, closed: Error[], late: number }> = []
    for (const [name, o] of CONFIGS) {
      for (let i = 0; i < PER_CONFIG; i++) clients.push({ name, ...await tracked(t, url, o), late: 0 })
    }
    const broadcaster = await tracked(t, url, { transport: 'LongPolling' })
    const calls = clients.map(async (client) => {
      for (let i = 0; i < SEQ; i++) {
        await client.c.invoke('Send', 'caller', [], String(i))
        // Its own message is on the connection before the Completion: it must have arrived first
        if ((client.got.get('caller')?.length ?? 0) !== i + 1) client.late++
      }
    })
    const broadcasts = (async () => {
      for (let b = 0; b < BROADCASTS; b++) {
        await broadcaster.c.invoke('Send', 'all', [], `b${b}`)
        await new Promise((resolve) => { setTimeout(resolve, 10) })
      }
    })()
    await Promise.all([...calls, broadcasts])
    await until(() => clients.every((x) => (x.got.get('all')?.length ?? 0) >= BROADCASTS), 15_000).catch(() => {})
    for (const x of clients) {
      t.same(x.got.get('caller'), range(SEQ), `${x.name}: its ${SEQ} messages, each once, in order`)
      t.same(x.got.get('all'), range(BROADCASTS, 'b'), `${x.name}: every broadcast, each once, in order`)
      t.equal(x.late, 0, `${x.name}: each message arrived before the Completion that followed it`)
      t.equal(x.closed.length, 0, `${x.name}: never closed`)
      t.equal(x.c.state, signalR.HubConnectionState.Connected)
    }
    t.same(broadcaster.got.get('all'), range(BROADCASTS, 'b'), 'the broadcaster (Long Polling) got its own broadcasts in order')
    t.equal(proxy.repeats, 0, 'the proxy never sent two consecutive requests of a connection to one node')
    t.equal(proxy.statuses.get(404) ?? 0, 0, 'no client was told 404')
    const perNode = await Promise.all(nodes.map(counts))
    t.comment(`requests per node ${JSON.stringify(proxy.sent)}; forwarding ${JSON.stringify(perNode)}`)
    perNode.forEach((n, i) => {
      t.ok(n.forwarded > 0, `node ${i} forwarded requests to owners (${n.forwarded})`)
      t.ok(n.served > 0, `node ${i} served requests forwarded to it (${n.served})`)
      t.equal(n.lost, 0, `node ${i} lost no forwarded request`)
    })
  })
})
