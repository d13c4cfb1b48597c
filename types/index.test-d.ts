// Compile-time tests of the public types: `npm test` runs tsc over this file, so every
// expect-error directive below must stay an error, and test/type-mistakes.test.ts checks that
// each one fails with the code it names.
import Fastify from 'fastify'
import Type from 'typebox'
import signalr, { Bytes, DateTime, defineHub, type AsyncApiDocument, type HubContext, type HubSnapshot, type InvocationContext, type RawConnection, type RawMessage, type SignalRTransport } from '../index.js'

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

// Bytes() and DateTime() hand the handler a Uint8Array and a Date; ctx names transport and protocol
defineHub({
  methods: {
    Store: {
      args: [Bytes({ maxBytes: 16 }), DateTime()],
      returns: Bytes(),
      handler: (ctx, bytes, when) => {
        assert<Equal<typeof bytes, Uint8Array>>()
        assert<Equal<typeof when, Date>>()
        assert<Equal<typeof ctx.transport, SignalRTransport>>()
        assert<Equal<typeof ctx.protocol, string>>()
        return bytes
      }
    }
  }
})

defineHub({
  methods: {
    // @ts-expect-error TS2322 a string argument cannot be used as a number
    Wrong: { args: [Type.String()], handler: (_ctx, s) => { const n: number = s; return n } }
  }
})

defineHub({
  methods: {
    // @ts-expect-error TS2322 the handler returns a string where `returns` says number
    WrongResult: { args: [], returns: Type.Number(), handler: () => 'x' }
  }
})

defineHub({
  methods: {
    // @ts-expect-error TS2322 a stream of strings cannot yield numbers
    WrongStream: { args: [], stream: Type.String(), async * handler () { yield 1 } }
  }
})

defineHub({
  methods: {
    // @ts-expect-error TS2322 one argument schema, two handler parameters
    TooMany: { args: [Type.String()], handler: (_ctx, _a: string, _b: string) => undefined }
  }
})

async function decorators (): Promise<void> {
  const app = Fastify()
  await app.register(signalr, { keepAliveInterval: 5000, transports: ['WebSockets'] })
  // @ts-expect-error TS2769 an unknown transport name
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
  // @ts-expect-error TS2339 broadcasts cannot wait for client results
  void ctx.clients.all.invoke('Ask')
  expectType<Promise<void>>(ctx.clients.group('g').volatile.send('M', 1))
  expectType<Promise<void>>(ctx.clients.all.latest('cursor:u1').send('M', { x: 1 }))
  // @ts-expect-error TS2339 policies do not stack
  void ctx.clients.all.volatile.latest('k')
}
void decorators

// A hub that declares its client methods: every proxy is typed by them
const typed = defineHub({
  methods: {
    Send: {
      args: [Type.String(), Type.String()],
      async handler (ctx, user, text) {
        await ctx.clients.all.send('ReceiveMessage', user, text)
        await ctx.clients.group('g').send('ReceiveMessage', user, text)
        await ctx.clients.others.send('Notice', 3)
        await ctx.hub.clients.user('u').send('ReceiveMessage', 'a', 'b')
        // @ts-expect-error TS2345 a misspelled client method
        await ctx.clients.all.send('RecieveMessage', user, text)
        // @ts-expect-error TS2345 a wrong argument type
        await ctx.clients.all.send('ReceiveMessage', user, 42)
        // @ts-expect-error TS2554 a missing argument
        await ctx.clients.caller.send('ReceiveMessage', user)
        // Backpressure policies keep the typing of the proxy they come from
        await ctx.clients.group('g').volatile.send('Notice', 1)
        await ctx.clients.all.latest('ticker').send('ReceiveMessage', user, text)
        await ctx.clients.caller.volatile.send('Notice', 2)
        // @ts-expect-error TS2345 a volatile send is checked like any other
        await ctx.clients.others.volatile.send('Notice', 'one')
        // @ts-expect-error TS2345 so is a latest-by-key send
        await ctx.hub.clients.all.latest('k').send('Nope', 1)
        // @ts-expect-error TS2339 a policy cannot wait for a client result
        await ctx.clients.caller.volatile.invoke('Confirm', 'q')
      }
    },
    Ask: {
      args: [Type.String()],
      returns: Type.Boolean(),
      async handler (ctx, question) {
        const answer = await ctx.clients.caller.invoke('Confirm', question)
        assert<Equal<typeof answer, boolean>>()
        const picked = await ctx.clients.client('id').invoke('Pick', [1, 2])
        assert<Equal<typeof picked, number>>()
        // @ts-expect-error TS2345 a method without `returns` cannot be invoked
        await ctx.clients.caller.invoke('ReceiveMessage', 'a', 'b')
        // @ts-expect-error TS2345 a wrong argument type in a client result
        await ctx.clients.caller.invoke('Confirm', 1)
        // @ts-expect-error TS2344 the typed invoke takes no result type: the schema gives it
        await ctx.clients.caller.invoke<number>('Confirm', question)
        return answer
      }
    }
  },
  client: {
    ReceiveMessage: { args: [Type.String(), Type.String()] },
    Notice: { args: [Type.Integer()] },
    Confirm: { args: [Type.String()], returns: Type.Boolean() },
    Pick: { args: [Type.Array(Type.Integer())], returns: Type.Integer() }
  },
  async onConnected (ctx) {
    await ctx.clients.others.send('Notice', 1)
    // @ts-expect-error TS2345 onConnected's proxies are typed too
    await ctx.clients.others.send('Notice', 'one')
  }
})

async function typedOutside (): Promise<void> {
  const app = Fastify()
  app.hub('/hubs/typed', typed)
  // Naming the hub (checked at run time) or its type gives the typed proxies
  const byValue = app.signalr.hub('/hubs/typed', typed)
  await byValue.clients.all.send('ReceiveMessage', 'a', 'b')
  const answer = await byValue.clients.client('id').invoke('Confirm', 'sure?')
  assert<Equal<typeof answer, boolean>>()
  // @ts-expect-error TS2345 a misspelled client method from outside the hub
  await byValue.clients.all.send('Recieve', 'a', 'b')
  const byType = app.signalr.hub<typeof typed>('/hubs/typed')
  // @ts-expect-error TS2345 a wrong argument type from outside the hub
  await byType.clients.group('g').send('Notice', '1')
  // Without a hub named it stays untyped, exactly as before
  await app.signalr.hub('/hubs/typed').clients.all.send('Anything', 1, {})
  expectType<AsyncApiDocument>(byType.asyncapi({ host: 'example.com', secure: true }))
  // The monitoring query: bounded, typed rows
  const snapshot = await byType.snapshot({ limit: 10 })
  expectType<HubSnapshot>(snapshot)
  expectType<SignalRTransport>(snapshot.connections[0].transport)
  assert<Equal<HubSnapshot['connections'][number]['userId'], string | null>>()
  // @ts-expect-error TS2322 the limit is a number
  await byType.snapshot({ limit: '10' })
  app.hub('/hubs/contract', typed, { asyncapi: { title: 'Chat', version: '1.2.0' } })
  // @ts-expect-error TS2322 asyncapi options are checked
  app.hub('/hubs/contract2', typed, { asyncapi: { title: 1 } })
}
void typedOutside

// Raw connection handlers: messages are text or bytes, sends take either
function rawConnections (): void {
  const app = Fastify()
  app.signalrConnection('/echo', async (connection) => {
    expectType<RawConnection>(connection)
    assert<Equal<typeof connection.transport, SignalRTransport>>()
    for await (const message of connection) {
      assert<Equal<typeof message, RawMessage>>()
      await connection.send(typeof message === 'string' ? message.toUpperCase() : message)
    }
    const next = await connection.read()
    assert<Equal<typeof next, string | Buffer | undefined>>()
    await connection.send(new Uint8Array([1, 2]))
    // @ts-expect-error TS2345 only text or bytes can be sent
    await connection.send(42)
    const why = await connection.closed
    assert<Equal<typeof why, Error | undefined>>()
  }, { maximumReceiveMessageSize: 65_536, userId: (request) => request.headers['x-user'] as string | undefined, preHandler: async () => {} })
  // @ts-expect-error TS2353 hub-only options are not a raw connection's
  app.signalrConnection('/raw', () => {}, { keepAliveInterval: 1000 })
}
void rawConnections
