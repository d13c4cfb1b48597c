// Streams both ways with the official client, in JSON and MessagePack.
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub, HubError } from '../index.js'
import { connect, signalR, type ProtocolName } from './fixtures/client.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

function collect<T> (stream: signalR.IStreamResult<T>): { items: T[], done: Promise<Error | undefined>, subscription: signalR.ISubscription<T> } {
  const items: T[] = []
  let subscription: signalR.ISubscription<T> | undefined
  const done = new Promise<Error | undefined>((resolve) => {
    subscription = stream.subscribe({
      next: (item) => { items.push(item) },
      complete: () => { resolve(undefined) },
      error: (err) => { resolve(err) }
    })
  })
  return { items, done, subscription: subscription as signalR.ISubscription<T> }
}

for (const protocol of ['json', 'messagepack'] as ProtocolName[]) {
  test(`${protocol}: a server stream delivers every item in order, then completes`, async (t) => {
    const { url } = await startServer(t)
    const c = await connect(t, url, { protocol })
    const { items, done } = collect<number>(c.stream('Counter', 20, 0))
    t.equal(await done, undefined)
    t.same(items, Array.from({ length: 20 }, (_, i) => i))
  })

  test(`${protocol}: cancelling a stream aborts ctx.signal and runs the generator's finally`, async (t) => {
    let finallyRan = false
    let aborted = false
    const hub = defineHub({
      methods: {
        Ticks: {
          args: [],
          stream: Type.Integer(),
          async * handler (ctx) {
            ctx.signal.addEventListener('abort', () => { aborted = true })
            try {
              for (let i = 0; ; i++) {
                yield i
                await sleep(10, undefined, { signal: ctx.signal })
              }
            } finally {
              finallyRan = true
            }
          }
        },
        Echo: { args: [Type.String()], handler: (_ctx, s) => s }
      }
    })
    const { url } = await startServer(t, { hub })
    const c = await connect(t, url, { protocol })
    const { items, subscription } = collect<number>(c.stream('Ticks'))
    await until(() => items.length >= 3)
    subscription.dispose()
    await until(() => finallyRan)
    t.ok(aborted, 'ctx.signal aborted')
    t.ok(finallyRan, 'finally ran')
    t.equal(await c.invoke('Echo', 'after'), 'after', 'the connection goes on')
  })

  test(`${protocol}: an error thrown mid-stream becomes an error Completion`, async (t) => {
    const hub = defineHub({
      methods: {
        Breaks: {
          args: [Type.Boolean()],
          stream: Type.String(),
          async * handler (_ctx, hub) {
            yield 'one'
            if (hub) throw new HubError('stream broke')
            throw new Error('hidden')
          }
        }
      }
    })
    const { url } = await startServer(t, { hub })
    const c = await connect(t, url, { protocol })
    const a = collect<string>(c.stream('Breaks', false))
    t.match((await a.done)?.message, 'An error occurred on the server while streaming results.')
    t.notMatch((await a.done)?.message, /hidden/)
    t.same(a.items, ['one'])
    const b = collect<string>(c.stream('Breaks', true))
    t.equal((await b.done)?.message, 'An error occurred on the server while streaming results. HubException: stream broke')
  })

  test(`${protocol}: upload streams (the official Subject) are typed, validated and backpressured`, async (t) => {
    const { url } = await startServer(t)
    const c = await connect(t, url, { protocol })
    const subject = new signalR.Subject<number>()
    const result = c.invoke('Sum', subject)
    for (const n of [1, 2, 3.5]) subject.next(n)
    subject.complete()
    t.equal(await result, 6.5)

    const bad = new signalR.Subject<unknown>()
    const refused = c.invoke('Sum', bad)
    bad.next(1)
    bad.next('two')
    bad.complete()
    await t.rejects(refused, { message: "An unexpected error occurred invoking 'Sum' on the server. HubException: Invalid item for upload stream 0 of 'Sum': must be number." })

    const erred = new signalR.Subject<number>()
    const failing = c.invoke('Sum', erred)
    erred.next(1)
    erred.error(new Error('client gave up'))
    await t.rejects(failing, { message: /HubException: client gave up/ }, 'an upload completed with an error ends the iterable with it')
  })
}

test('a disconnect cancels every stream of that connection', async (t) => {
  let live = 0
  let cancelled = 0
  const hub = defineHub({
    methods: {
      Forever: {
        args: [],
        stream: Type.Integer(),
        async * handler (ctx) {
          live++
          try {
            for (let i = 0; ; i++) {
              yield i
              await sleep(5, undefined, { signal: ctx.signal })
            }
          } finally {
            live--
            cancelled++
          }
        }
      }
    }
  })
  const { url } = await startServer(t, { hub })
  const c = await connect(t, url)
  const s1 = collect<number>(c.stream('Forever'))
  const s2 = collect<number>(c.stream('Forever'))
  await until(() => s1.items.length > 2 && s2.items.length > 2)
  t.equal(live, 2)
  await c.stop()
  await until(() => cancelled === 2)
  t.equal(live, 0)
})

test('upload backpressure: a full upload buffer holds back the messages behind it', async (t) => {
  let consumed = 0
  const hub = defineHub({
    methods: {
      Slow: {
        args: [],
        uploads: [Type.Integer()],
        async handler (_ctx, items) {
          for await (const _ of items) {
            await sleep(10)
            consumed++
          }
          return consumed
        }
      },
      // Answers with how far the upload got when this call was finally read
      Probe: { args: [], handler: () => consumed }
    }
  })
  const capacity = 4
  const { base } = await startServer(t, { hub, plugin: { streamBufferCapacity: capacity } })
  // A bare socket fixes the order on the wire (the official client sends upload items on a
  // promise chain, so a later invoke can overtake them)
  const c = await rawJsonConnection(t, base, '/hubs/scenario')
  const total = 30
  let frame = `{"type":1,"invocationId":"1","target":"Slow","arguments":[],"streamIds":["s"]}${RS}`
  for (let i = 0; i < total; i++) frame += `{"type":2,"invocationId":"s","item":${i}}${RS}`
  frame += `{"type":3,"invocationId":"s"}${RS}{"type":1,"invocationId":"2","target":"Probe","arguments":[]}${RS}`
  c.send(frame)
  const probe = JSON.parse(String(await c.next(5000)).slice(0, -1)) as { invocationId: string, result: number }
  t.equal(probe.invocationId, '2', 'the Probe answers first')
  // The Probe was read only once no more than `capacity` items (plus the one in the
  // method's hands) were left unconsumed
  t.ok(probe.result >= total - capacity - 1, `Probe ran after ${probe.result} items were consumed`)
  t.equal(String(await c.next(5000)), `{"type":3,"invocationId":"1","result":${total}}${RS}`, 'every item arrives')
})

test('stream invocation mode errors use the .NET texts', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  await t.rejects(c.invoke('Counter', 1, 1), { message: "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation." })
  const s = collect(c.stream('Echo', 'x'))
  t.equal((await s.done)?.message, "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.")
})

test('a server stream slows to the pace of a client that reads slowly instead of being cut off', async (t) => {
  const hub = defineHub({
    methods: {
      Big: {
        args: [Type.Integer()],
        stream: Type.String(),
        async * handler (_ctx, n) {
          const chunk = 'x'.repeat(64 * 1024)
          for (let i = 0; i < n; i++) yield chunk
        }
      }
    }
  })
  // 300 items of 64 KiB is 19 MB: more than the kernel's socket buffers absorb, and far past
  // 4 x transportMaxBufferSize if sent blindly
  const { base } = await startServer(t, { hub, plugin: { transportMaxBufferSize: 64 * 1024 } })
  const c = await rawJsonConnection(t, base, '/hubs/scenario')
  const socket = (c.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  socket.pause()
  c.send(`{"type":4,"invocationId":"1","target":"Big","arguments":[300]}${RS}`)
  await sleep(300)
  socket.resume()
  const end = Date.now() + 20_000
  let items = 0
  let completion: string | undefined
  while (completion === undefined && Date.now() < end) {
    const frame = String(await c.next(5000))
    for (const record of frame.split(RS).filter((r) => r.length > 0)) {
      if (record.startsWith('{"type":2')) items++
      else if (record.startsWith('{"type":3')) completion = record
    }
  }
  t.equal(items, 300, 'every item arrived')
  t.equal(completion, '{"type":3,"invocationId":"1"}', 'and the stream completed normally')
})

test('an upload under a stream id already in use is refused; every upload ends at disconnect', async (t) => {
  const ended: string[] = []
  const hub = defineHub({
    methods: {
      Drain: {
        args: [Type.String()],
        uploads: [Type.Integer()],
        async handler (_ctx, name, items) {
          let n = 0
          try {
            for await (const _ of items) n++
            return n
          } finally {
            ended.push(name)
          }
        }
      }
    }
  })
  const { base } = await startServer(t, { hub, path: '/hubs/uploads' })
  const c = await rawJsonConnection(t, base, '/hubs/uploads')
  c.send(`{"type":1,"invocationId":"1","target":"Drain","arguments":["first"],"streamIds":["s"]}${RS}`)
  c.send(`{"type":1,"invocationId":"2","target":"Drain","arguments":["second"],"streamIds":["s"]}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"2","error":"Failed to invoke 'Drain' due to an error on the server. HubException: Stream ID 's' is already in use."}${RS}`)
  // The first upload still owns the id
  c.send(`{"type":2,"invocationId":"s","item":1}${RS}{"type":2,"invocationId":"s","item":2}${RS}{"type":3,"invocationId":"s"}${RS}`)
  t.equal(await c.next(), `{"type":3,"invocationId":"1","result":2}${RS}`, 'the first upload got every item and completed')
  // Uploads still open when the connection ends: their readers finish too
  c.send(`{"type":1,"invocationId":"4","target":"Drain","arguments":["open1"],"streamIds":["u"]}${RS}`)
  c.send(`{"type":1,"invocationId":"5","target":"Drain","arguments":["open2"],"streamIds":["v"]}${RS}`)
  c.send(`{"type":2,"invocationId":"u","item":1}${RS}`)
  c.ws.terminate()
  await until(() => ended.includes('open1') && ended.includes('open2'), 5000)
  t.same(ended.sort(), ['first', 'open1', 'open2'], 'every reader left its for await')
})
