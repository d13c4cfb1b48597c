// The README's feature examples, kept here so that `npm test` type-checks them and
// test/examples.test.ts runs them against the official client.
import { setTimeout as sleep } from 'node:timers/promises'
import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import Type from 'typebox'
import signalr, { accessToken, defineHub, HubError } from 'fastify-signalr'

export const features = defineHub({
  methods: {
    // Server-to-client stream: an async generator; ctx.signal aborts on cancel or disconnect
    Counter: {
      args: [Type.Integer({ minimum: 0 }), Type.Integer({ minimum: 0 })],
      stream: Type.Integer(),
      async * handler (ctx, count, delayMs) {
        for (let i = 0; i < count; i++) {
          yield i
          await sleep(delayMs, undefined, { signal: ctx.signal })
        }
      }
    },
    // Client-to-server stream: each `uploads` schema becomes an AsyncIterable argument
    Sum: {
      args: [],
      uploads: [Type.Number()],
      returns: Type.Number(),
      async handler (ctx, numbers) {
        let sum = 0
        for await (const n of numbers) sum += n
        return sum
      }
    },
    // Client result: ask the caller and wait for its answer
    Confirm: {
      args: [Type.String()],
      returns: Type.Boolean(),
      async handler (ctx, question) {
        return await ctx.clients.caller.invoke<boolean>('Confirm', question)
      }
    },
    // Per-method authorization: a refused call gets an error Completion
    Shutdown: {
      args: [],
      authorize: (ctx) => ctx.userId === 'admin',
      handler: (ctx) => { throw new HubError(`not today, ${ctx.userId ?? 'anonymous'}`) }
    }
  }
})

export async function buildApp (secret: string) {
  const app = Fastify({ logger: true })
  // The token comes as `Authorization: Bearer` or, from browsers on WebSockets and SSE,
  // as the access_token query parameter: accessToken() reads both
  await app.register(fastifyJwt, { secret, verify: { extractToken: accessToken } })
  await app.register(signalr, { allowStatefulReconnects: true })
  app.hub('/hubs/features', features, {
    // An ordinary Fastify hook: it guards negotiate and every transport request
    async onRequest (request, reply) {
      try {
        await request.jwtVerify()
      } catch {
        return await reply.code(401).send({ error: 'Unauthorized' })
      }
    },
    userId: (request) => (request.user as { sub: string }).sub
  })
  return app
}
