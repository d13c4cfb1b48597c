// The admin view (README "Admin view"): a chat hub, and fastify-signalr/admin behind a session
// cookie, plus hubContext.snapshot() for the application's own monitoring. Run with:
// ADMIN_TOKEN=… node --import tsx examples/admin.ts, then open http://127.0.0.1:3000/signalr-admin
// in a browser that has the cookie admin=<ADMIN_TOKEN>.
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import signalr, { defineHub } from 'fastify-signalr'
import { signalrAdmin } from 'fastify-signalr/admin'

const chat = defineHub({
  methods: {
    Join: { args: [Type.String({ minLength: 1, maxLength: 32 })], async handler (ctx, room) { await ctx.groups.add(ctx.connectionId, room) } },
    Send: { args: [Type.String(), Type.String()], async handler (ctx, room, text) { await ctx.clients.group(room).send('Message', text) } }
  }
})

export async function buildAdminApp (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(signalr)
  app.hub('/hubs/chat', chat, { userId: (request) => (request.query as { user?: string }).user })
  await app.register(signalrAdmin, {
    path: '/signalr-admin',     // the default
    // the guard: any route hook (onRequest, preParsing, preValidation, preHandler); it guards
    // the page, its assets and the hub the page talks to
    onRequest: async (request, reply) => {
      if (request.headers.cookie?.includes(`admin=${process.env.ADMIN_TOKEN}`) !== true) await reply.code(401).send()
    },
    title: 'Chat fleet',        // the page's heading
    interval: 1000,             // ms between updates (100 to 60000)
    maxConnections: 200,        // rows per hub in each update (1 to 1000); the rest are counted
    historyLength: 120          // points of the connection chart
  })
  return app
}

/** The application's own use of the query the view reads: who is connected, over what. */
export async function whoIsConnected (app: FastifyInstance): Promise<string[]> {
  const s = await app.signalr.hub('/hubs/chat').snapshot({ limit: 100 })   // limit 0 to 1000, default 100
  return s.connections.map((c) => `${c.userId ?? 'anonymous'} over ${c.transport}/${c.protocol}, in ${c.groups.join(', ') || 'no group'}`)
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1])) {
  const app = await buildAdminApp()
  await app.listen({ port: 3000, host: '127.0.0.1' })
}
