// The invoke path's two ways through: a handler that returns a value is answered in the same
// turn, one that returns a promise (or any thenable) when it settles. Whichever way, calls
// are answered in order, a handler's own sends go out before its Completion, a failure is an
// error Completion, and a parallel-invocation slot is held until the call has settled.
import { test, type Test } from 'tap'
import Type from 'typebox'
import { defineHub, HubError } from '../index.js'
import { RS, negotiate, rawConnect, type RawClient } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'

interface Completion { type: 3, invocationId: string, result?: unknown, error?: string }

let releaseSlow: (() => void) | undefined

const hub = defineHub({
  methods: {
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text },
    AsyncEcho: { args: [Type.String()], returns: Type.String(), async handler (_ctx, text) { return `async ${text}` } },
    // A thenable that is not a Promise: awaited as `await` would await it
    Thenable: {
      args: [Type.String()],
      returns: Type.String(),
      handler: (_ctx, text) => ({ then (resolve: (v: string) => void) { resolve(`then ${text}`) } }) as unknown as string
    },
    ThenableRejects: {
      args: [],
      handler: () => ({ then (_resolve: unknown, reject: (e: Error) => void) { reject(new HubError('thenable refused')) } }) as unknown as void
    },
    SyncFail: { args: [], handler: () => { throw new HubError('sync boom') } },
    AsyncFail: { args: [], async handler () { throw new HubError('async boom') } },
    NoteThenReturn: {
      args: [],
      returns: Type.String(),
      handler: (ctx) => {
        void ctx.clients.caller.send('Note', 'before the answer')
        return 'done'
      }
    },
    Slow: {
      args: [],
      returns: Type.String(),
      async handler () {
        await new Promise<void>((resolve) => { releaseSlow = resolve })
        return 'slow'
      }
    }
  }
})

function invocation (id: string | undefined, target: string, ...args: unknown[]): string {
  return JSON.stringify({ type: 1, ...(id === undefined ? {} : { invocationId: id }), target, arguments: args }) + RS
}

async function connectRaw (t: Test, maximumParallelInvocationsPerClient = 1): Promise<RawClient> {
  const { base, url } = await startServer(t, { hub, plugin: { maximumParallelInvocationsPerClient } })
  const neg = await negotiate(base, '/hubs/scenario')
  const client = await rawConnect(t, `${url.replace('http', 'ws')}?id=${neg.connectionToken}`)
  client.send(`{"protocol":"json","version":1}${RS}`)
  t.equal(await client.next(), `{}${RS}`)
  return client
}

async function messages (client: RawClient, count: number): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = []
  while (out.length < count) {
    const m = JSON.parse((await client.next() as string).slice(0, -1)) as Record<string, unknown>
    if (m.type !== 6) out.push(m)
  }
  return out
}

test('every kind of return is answered, in order, from one frame', async (t) => {
  const client = await connectRaw(t)
  client.send([
    invocation('1', 'Echo', 'a'),
    invocation(undefined, 'Echo', 'not answered'),
    invocation('2', 'Thenable', 'b'),
    invocation('3', 'ThenableRejects'),
    invocation('4', 'AsyncEcho', 'c'),
    invocation('5', 'AsyncFail'),
    invocation('6', 'SyncFail'),
    invocation('7', 'Echo', 'd')
  ].join(''))
  const got = await messages(client, 7) as unknown as Completion[]
  t.same(got.map((m) => m.invocationId), ['1', '2', '3', '4', '5', '6', '7'], 'one Completion per blocking call, in the order of the calls')
  t.same(got.map((m) => m.type), [3, 3, 3, 3, 3, 3, 3])
  t.equal(got[0].result, 'a')
  t.equal(got[1].result, 'then b', 'a thenable is awaited')
  t.match(got[2].error, /HubException: thenable refused$/)
  t.equal(got[3].result, 'async c')
  t.match(got[4].error, /HubException: async boom$/)
  t.match(got[5].error, /HubException: sync boom$/)
  t.equal(got[6].result, 'd')
  // Nothing else came: the non-blocking call got no Completion
  await new Promise((resolve) => { setTimeout(resolve, 100) })
  t.equal(client.frames.filter((f) => typeof f === 'string' && f.includes('"type":3')).length, 7)
})

test("a handler's own send goes out before its Completion", async (t) => {
  const client = await connectRaw(t)
  client.send(invocation('1', 'NoteThenReturn'))
  const [first, second] = await messages(client, 2)
  t.same(first, { type: 1, target: 'Note', arguments: ['before the answer'] })
  t.same(second, { type: 3, invocationId: '1', result: 'done' })
})

test('a slot is held until a promise settles; with two slots a plain return overtakes it', async (t) => {
  t.test('one slot: the plain call waits for the slow one', async (t) => {
    const client = await connectRaw(t, 1)
    client.send(invocation('slow', 'Slow') + invocation('fast', 'Echo', 'x'))
    await new Promise((resolve) => { setTimeout(resolve, 100) })
    t.equal(client.frames.filter((f) => typeof f === 'string' && f.includes('"type":3')).length, 0, 'nothing answered while Slow holds the slot')
    releaseSlow?.()
    const got = await messages(client, 2)
    t.same(got.map((m) => m.invocationId), ['slow', 'fast'])
  })
  t.test('two slots: the plain call is answered at once', async (t) => {
    const client = await connectRaw(t, 2)
    client.send(invocation('slow', 'Slow') + invocation('fast', 'Echo', 'x'))
    const [first] = await messages(client, 1)
    t.same(first, { type: 3, invocationId: 'fast', result: 'x' })
    releaseSlow?.()
    const [second] = await messages(client, 1)
    t.same(second, { type: 3, invocationId: 'slow', result: 'slow' })
  })
})
