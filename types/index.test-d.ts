// Compile-time tests of the public types: `npm test` runs tsc over this file, so every
// `npm test` runs tsc over this file, so every expect-error directive below must stay an error
import Fastify from 'fastify'
import Type from 'typebox'
import signalr, { defineHub, type HubContext, type InvocationContext } from '../index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assert<T extends true> (): void {}

defineHub({
  methods: {
    Echo: {
      args: [Type.String()],
      returns: Type.String(),
      handler: (ctx, text) => {
        assert<Equal<typeof text, string>>()
        expectType<InvocationContext>(ctx)
        return text
      }
    },
    Add: {
      args: [Type.Integer(), Type.Object({ x: Type.Number(), tags: Type.Array(Type.String()) })],
      handler: (_ctx, a, b) => {
        assert<Equal<typeof a, number>>()
        assert<Equal<typeof b, { x: number, tags: string[] }>>()
        return a + b.x
      }
    },
    Counter: {
      args: [Type.Integer()],
      stream: Type.Integer(),
      async * handler (_ctx, n) {
        assert<Equal<typeof n, number>>()
        yield n
      }
    },
    Sum: {
      args: [Type.String()],
      uploads: [Type.Number(), Type.String()],
      async handler (_ctx, label, numbers, names) {
        assert<Equal<typeof label, string>>()
        assert<Equal<typeof numbers, AsyncIterable<number>>>()
        assert<Equal<typeof names, AsyncIterable<string>>>()
        return label
      }
    },
    Optional: {
      args: [Type.Union([Type.String(), Type.Null()])],
      handler: (_ctx, v) => {
        assert<Equal<typeof v, string | null>>()
      }
    }
  },
  onConnected (ctx) { expectType<string>(ctx.connectionId) },
  onDisconnected (_ctx, error) { expectType<Error | undefined>(error) }
})

defineHub({
  methods: {
    // @ts-expect-error a string argument cannot be used as a number
    Wrong: { args: [Type.String()], handler: (_ctx, s) => { const n: number = s; return n } }
  }
})

defineHub({
  methods: {
    // @ts-expect-error the handler returns a string where `returns` says number
    WrongResult: { args: [], returns: Type.Number(), handler: () => 'x' }
  }
})

defineHub({
  methods: {
    // @ts-expect-error a stream of strings cannot yield numbers
    WrongStream: { args: [], stream: Type.String(), async * handler () { yield 1 } }
  }
})

defineHub({
  methods: {
    // @ts-expect-error one argument schema, two handler parameters
    TooMany: { args: [Type.String()], handler: (_ctx, _a: string, _b: string) => undefined }
  }
})

async function decorators (): Promise<void> {
  const app = Fastify()
  await app.register(signalr, { keepAliveInterval: 5000, transports: ['WebSockets'] })
  // @ts-expect-error an unknown transport name
  await app.register(signalr, { transports: ['Pigeon'] })
  const hub = defineHub({ methods: {} })
  app.hub('/hubs/x', hub, { userId: (request) => request.headers['x-user'] as string | undefined, preHandler: async () => {} })
  const ctx = app.signalr.hub('/hubs/x')
  expectType<HubContext>(ctx)
  expectType<Promise<void>>(ctx.clients.group('g').send('M', 1, 'two'))
  expectType<Promise<string[]>>(ctx.groupMembers('g'))
  expectType<Promise<boolean>>(ctx.isUserOnline('u'))
  const n: Promise<number> = ctx.clients.client('id').invoke<number>('Ask')
  expectType<Promise<number>>(n)
  // @ts-expect-error broadcasts cannot wait for client results
  void ctx.clients.all.invoke('Ask')
}
void decorators
