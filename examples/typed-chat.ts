// The README's "Types end to end" server: a hub that declares the client's methods too, so
// every send and client result is typed, checked, and described in its AsyncAPI document.
import Fastify from 'fastify'
import Type from 'typebox'
import signalr, { defineHub } from 'fastify-signalr'

export const chat = defineHub({
  methods: {
    Send: {
      args: [Type.String({ maxLength: 64 }), Type.String({ maxLength: 2000 })],
      async handler (ctx, user, text) {
        await ctx.clients.all.send('ReceiveMessage', user, text)   // checked against `client`
      }
    },
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text },
    Ticks: {
      args: [Type.Integer({ minimum: 0, maximum: 100 })],
      stream: Type.String(),
      async * handler (ctx, count) {
        for (let i = 0; i < count && !ctx.signal.aborted; i++) yield `tick ${i}`
      }
    },
    Upload: {
      args: [],
      uploads: [Type.String()],
      returns: Type.Integer(),
      async handler (_ctx, lines) {
        let count = 0
        for await (const _line of lines) count++
        return count
      }
    },
    Delete: {
      args: [Type.String()],
      returns: Type.Boolean(),
      async handler (ctx, id) {
        return await ctx.clients.caller.invoke('Confirm', `Delete ${id}?`)   // Promise<boolean>
      }
    }
  },
  // What the server may call on clients
  client: {
    ReceiveMessage: { args: [Type.String(), Type.String()] },
    Confirm: { args: [Type.String()], returns: Type.Boolean() }   // a client result
  }
})

export async function buildTypedApp () {
  const app = Fastify()
  // Development: also check what the server sends against the `client` schemas
  await app.register(signalr, { validateClientArguments: process.env.NODE_ENV !== 'production' })
  app.hub('/hubs/chat', chat, { asyncapi: { title: 'Chat', version: '1.0.0' } })   // GET /hubs/chat/asyncapi.json
  app.post('/announce', async (request) => {
    // Naming the hub types its proxies here too
    await app.signalr.hub('/hubs/chat', chat).clients.all.send('ReceiveMessage', 'server', String(request.body))
    return { sent: true }
  })
  return app
}
