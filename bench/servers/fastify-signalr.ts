// Our server for the benchmark: the public API only, the same hub contract as
// bench/aspnetcore (Echo, BroadcastEcho -> Clients.All "Receive"), default options, no logger.
// Prints "listening http://127.0.0.1:PORT"; SIGTERM/SIGINT close it (so --cpu-prof can write).
// With REDIS_PORT set, the hub scales out through the Redis backplane (ioredis), for the
// broadcast-redis scenario. With BENCH_STATS=1 (the scale scenarios) it also serves the
// runner's probes (bench/servers/stats.ts) and prints how long app.close() took.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import Type from 'typebox'
import signalr, { defineHub } from '../../index.js'
import { redisBackplane } from '../../lib/lifetime/redis/index.js'
import { benchStats } from './stats.js'

const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text },
    BroadcastEcho: { args: [Type.String()], async handler (ctx, text) { await ctx.clients.all.send('Receive', text) } }
  }
})

const app = Fastify({ logger: false })
const redisPort = process.env.REDIS_PORT
const redis = redisPort === undefined ? undefined : new Redis({ host: '127.0.0.1', port: Number(redisPort) })
if (redis !== undefined) await new Promise((resolve) => { redis.once('ready', resolve) })
const keepAlive = process.env.KEEPALIVE_MS === undefined ? {} : { keepAliveInterval: Number(process.env.KEEPALIVE_MS) }
await app.register(signalr, redis === undefined ? keepAlive : { ...keepAlive, backplane: redisBackplane({ client: redis }) })
app.hub('/hubs/scenario', hub)
const stats = process.env.BENCH_STATS === '1'
  ? benchStats(async (text) => { await app.signalr.hub('/hubs/scenario').clients.all.send('Receive', text) })
  : undefined
if (stats !== undefined) {
  app.all('/bench/*', async (request, reply) => {
    reply.hijack()
    if (!await stats.handle(request.raw, reply.raw)) reply.raw.writeHead(404).end()
  })
}
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
console.log(`listening ${address}`)

let stopping = false
async function stop (): Promise<void> {
  if (stopping) return
  stopping = true
  // The scale scenarios time the close of every connection: give it far longer
  const bound = setTimeout(() => { process.exit(0) }, stats === undefined ? 3000 : 120_000)
  bound.unref()
  try {
    const t0 = performance.now()
    await app.close()
    if (stats !== undefined) console.log(`bench closed-in-ms ${(performance.now() - t0).toFixed(1)}`)
    redis?.disconnect()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })
