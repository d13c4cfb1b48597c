// Request forwarding's own edges, in one process with two servers on a real redis-server:
// the option is checked; node-redis and ioredis both forward; what another party publishes
// on a connection's channel (garbage, an unknown op, a reply channel that is not ours) is
// ignored without harm and without publishing anywhere; nothing is left pending.
import t from 'tap'
import { redisBackplane } from '../lib/lifetime/redis/index.js'
import { encodeForward, tokenHash } from '../lib/lifetime/redis/forwarding.js'
import { FLEET_HUB_NAME, startFleetServer, type FleetServer, fleetManager } from './fixtures/fleet.js'
import { redisClient, startRedis, type ClientKind, withRedis } from './fixtures/redis.js'
import { until } from './fixtures/until.js'

withRedis(t, () => {
  t.test('the forwarding option is checked', async (t) => {
    const redis = await startRedis(t)
    const client = await redisClient(t, redis, 'ioredis')
    t.throws(() => redisBackplane({ client, forwarding: 'yes' as unknown as boolean }), { code: 'FST_SIGNALR_INVALID_OPTION' })
    t.throws(() => redisBackplane({ client, forwardingProbeInterval: 0 }), { code: 'FST_SIGNALR_INVALID_OPTION' })
  })

  for (const kind of ['node-redis', 'ioredis'] as ClientKind[]) {
    t.test(`${kind}: a connection negotiated on A lives on B; A forwards; strangers on its channel are ignored`, async (t) => {
      const redis = await startRedis(t)
      const A = await startFleetServer(t, redis, kind, { forwarding: true, hubName: FLEET_HUB_NAME })
      const B = await startFleetServer(t, redis, kind, { forwarding: true, hubName: FLEET_HUB_NAME })
      const negotiated = await (await fetch(`${A.url}/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { connectionToken: string }
      const token = negotiated.connectionToken
      const at = (s: FleetServer, method = 'GET', body?: string): Promise<Response> => fetch(`${s.url}?id=${token}`, { method, body })
      t.equal((await at(B)).status, 200, 'the first poll, on B, opens it there')
      t.equal(A.app.signalr.connectionCount, 0, 'A never held it')
      t.equal(B.app.signalr.connectionCount, 1)
      t.equal((await at(A, 'POST', '{"protocol":"json","version":1}\x1e')).status, 200, 'the handshake POST to A is forwarded to B')
      const poll = await at(A)
      t.equal(poll.status, 200, 'a poll on A is answered by B')
      t.equal(await poll.text(), '{}\x1e', 'with the handshake answer')
      t.equal(fleetManager(A).forwarding?.counts.forwarded, 2, 'A forwarded two requests')
      t.equal(fleetManager(B).forwarding?.counts.served, 2, 'B served two')

      // A stranger with access to Redis publishes on the connection's channel
      const stranger = await redisClient(t, redis, 'ioredis') as { publish: (c: string, m: Buffer) => Promise<number>, subscribe: (c: string) => Promise<unknown>, on: (e: string, l: (...a: unknown[]) => void) => void, duplicate: () => unknown }
      const listener = stranger.duplicate() as typeof stranger
      const elsewhere: unknown[] = []
      listener.on('message', (...args) => { elsewhere.push(args) })
      await listener.subscribe('elsewhere')
      const channel = `${FLEET_HUB_NAME}:fastify-signalr:tx:${tokenHash(token)}`
      t.equal(await stranger.publish(channel, Buffer.from('garbage')), 1, 'B listens on the hashed channel')
      await stranger.publish(channel, encodeForward({ k: 0, i: 7, o: 'explode', r: `${FLEET_HUB_NAME}:fastify-signalr:txreply:x` }, Buffer.alloc(0)))
      await stranger.publish(channel, encodeForward({ k: 0, i: 8, o: 'send', r: 'elsewhere' }, Buffer.from('{"type":6}\x1e')))
      await stranger.publish(channel, encodeForward({ k: 0, i: 9, o: 'poll', r: 'elsewhere' }, Buffer.alloc(0)).subarray(0, 6))
      await new Promise((resolve) => { setTimeout(resolve, 300) })
      t.same(elsewhere, [], 'nothing was published to a channel that is not a reply channel of this hub')
      t.equal(B.app.signalr.connectionCount, 1, 'the connection is still there')
      ;(listener as unknown as { disconnect: () => void }).disconnect()

      t.equal((await at(A, 'DELETE')).status, 202, 'DELETE through A ends it on B')
      await until(() => B.app.signalr.connectionCount === 0)
      t.equal(fleetManager(A).indexSizes().pendingForwards, 0, 'nothing is left pending on A')
      t.notOk(redis.cli('KEYS', '*').includes(token), 'the token is in no Redis key')
    })
  }
})
