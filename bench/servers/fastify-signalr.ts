// Our server for the benchmark: the public API only, the same hub contract as
// bench/aspnetcore (Echo, BroadcastEcho -> Clients.All "Receive"), default options, no logger.
// Prints "listening http://127.0.0.1:PORT"; SIGTERM/SIGINT close it (so --cpu-prof can write).
// With REDIS_PORT set, the hub scales out through the Redis backplane (ioredis), for the
// broadcast-redis scenario.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import Type from 'typebox'
import signalr, { defineHub } from '../../index.js'
import { redisBackplane } from '../../lib/lifetime/redis/index.js'

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
await app.register(signalr, redis === undefined ? {} : { backplane: redisBackplane({ client: redis }) })
app.hub('/hubs/scenario', hub)
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
console.log(`listening ${address}`)

let stopping = false
async function stop (): Promise<void> {
  if (stopping) return
  stopping = true
  const bound = setTimeout(() => { process.exit(0) }, 3000)
  bound.unref()
  try {
    await app.close()
    redis?.disconnect()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })
