// Our server for the benchmark: the public API only, the same hub contract as
// bench/aspnetcore (Echo, BroadcastEcho -> Clients.All "Receive"), default options, no logger.
// Prints "listening http://127.0.0.1:PORT"; SIGTERM/SIGINT close it (so --cpu-prof can write).
import Fastify from 'fastify'
import Type from 'typebox'
import signalr, { defineHub } from '../../index.js'

const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text },
    BroadcastEcho: { args: [Type.String()], async handler (ctx, text) { await ctx.clients.all.send('Receive', text) } }
  }
})

const app = Fastify({ logger: false })
await app.register(signalr)
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
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })
