// app.close() under load: invocations waiting on ctx.signal, server streams, upload streams
// and held long polls, on every transport and both protocols. Every client gets a Close,
// every handler sees its signal abort, close() resolves in time, and a process doing this
// exits on its own.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { buildClient, signalR, type ProtocolName, type TransportName } from './fixtures/client.js'
import { heldPolls, loadHub, newRecord } from './fixtures/load-hub.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'
import { encode, invocation, nextMessage, open, type Kind, type Protocol, type WireClient } from './fixtures/wire.js'
import { registryOf } from '../lib/registry.js'
import { exitAfter, NO_COVERAGE } from './fixtures/child.js'

test('app.close() under load: every client gets a Close, every handler its abort, close() is quick', async (t) => {
  const record = newRecord()
  const { app, base } = await startServer(t, { hub: loadHub(record), path: '/hubs/load' })
  const url = base + '/hubs/load'

  // Raw clients: each runs a slow invocation, and (where data may flow) a server stream and an upload
  const raws: WireClient[] = []
  const rawKinds: Array<[Kind, Protocol, boolean]> = [
    ['ws', 'json', true], ['ws', 'json', true], ['ws', 'messagepack', true], ['ws', 'messagepack', true],
    ['sse', 'json', true], ['lp', 'json', true],
    // These keep a poll held open: nothing flows to them before the close
    ['lp', 'json', false], ['lp', 'messagepack', false]
  ]
  let streams = 0
  let uploads = 0
  for (const [kind, protocol, busy] of rawKinds) {
    const c = await open(kind, base, '/hubs/load', { protocol })
    raws.push(c)
    if (busy) {
      await c.send(encode(protocol, { type: 4, invocationId: 't', target: 'Ticks', arguments: [kind === 'lp' ? 60_000 : 50] }))
      streams++
    }
    await c.send(Buffer.concat([
      encode(protocol, { type: 1, invocationId: 'u', target: 'Upload', arguments: [], streamIds: ['s'] }),
      encode(protocol, { type: 2, invocationId: 's', item: 1 })
    ]))
    uploads++
    await c.send(invocation(protocol, 'w', 'Slow'))
  }
  // Official clients on every transport and protocol, with an invoke, a stream and an upload running
  const configs: Array<[TransportName, ProtocolName]> = [
    ['WebSockets', 'json'], ['WebSockets', 'messagepack'], ['ServerSentEvents', 'json'], ['LongPolling', 'json'], ['LongPolling', 'messagepack']
  ]
  const official: Array<{ name: string, closed: Promise<Error | undefined>, settled: Array<Promise<string>> }> = []
  for (const [transport, protocol] of configs) {
    const c = buildClient(url, { transport, protocol })
    t.teardown(async () => { await c.stop() })
    const closed = new Promise<Error | undefined>((resolve) => { c.onclose(resolve) })
    await c.start()
    const subject = new signalR.Subject<number>()
    const settled = [
      c.invoke('Slow').then((r) => `resolved ${String(r)}`, (err: Error) => `rejected: ${err.message}`),
      new Promise<string>((resolve) => {
        c.stream('Ticks', transport === 'LongPolling' ? 60_000 : 50).subscribe({ next: () => {}, complete: () => { resolve('stream completed') }, error: (err) => { resolve(`stream error: ${err.message}`) } })
      }),
      c.invoke('Upload', subject).then((r) => `resolved ${String(r)}`, (err: Error) => `rejected: ${err.message}`)
    ]
    subject.next(1)
    streams++
    uploads++
    official.push({ name: `${transport}/${protocol}`, closed, settled })
  }
  const slow = raws.length + official.length
  await until(() => record.started.slow === slow && record.started.stream === streams && record.started.upload === uploads, 10_000)
  t.same(record.started, { slow, stream: streams, upload: uploads }, 'everything is running')
  // The held polls: pending now, answered by the close
  const held = new Map(raws.filter((c) => c.kind === 'lp').map((c) => {
    const close = nextMessage(c, (m) => m.type === 7, 10_000)
    close.catch(() => {})
    return [c, close]
  }))
  // Every Long Polling client, official (2) and raw (3), waiting in a poll
  await until(() => heldPolls(registryOf(app.signalr)) === 5, 5000)

  const started = Date.now()
  await app.close()
  const closeMs = Date.now() - started
  t.ok(closeMs < 5000, `close() resolved in ${closeMs} ms`)
  t.equal(app.signalr.connectionCount, 0, 'the registry is empty')

  for (const c of raws) {
    // For Long Polling, the poll that was held open when close() began
    const close = await (held.get(c) ?? nextMessage(c, (m) => m.type === 7, 5000))
    t.same(close, { type: 7, allowReconnect: true }, `${c.kind}/${c.protocol}: a Close that allows reconnect${held.has(c) ? ', answering the held poll' : ''}`)
    const end = await c.ended(5000)
    if (c.kind === 'ws') t.equal(end.code, 1000, 'then a normal close')
  }
  for (const o of official) {
    t.equal(await o.closed, undefined, `${o.name}: onclose, without an error`)
    const outcomes = await Promise.all(o.settled)
    t.equal(outcomes.length, 3, `${o.name}: the invoke, the stream and the upload all settled: ${outcomes.join('; ')}`)
  }
  await until(() => record.aborted.slow === slow && record.aborted.stream === streams && record.aborted.upload === uploads, 5000)
  t.same(record.aborted, { slow, stream: streams, upload: uploads }, 'every handler saw ctx.signal abort')
  t.equal(record.uploadEnded, uploads, 'every upload loop ended when the connection closed')
})

test('a process that closes under load exits on its own', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/exit-after-close-load.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...NO_COVERAGE }
  })
  // The child prints its report once app.close() has resolved; from then on it has 10 s to exit
  const { code, signal, out, killed } = await exitAfter(child, 'closed', 10_000)
  t.equal(killed, undefined, `exited by itself: ${out}`)
  t.equal(signal, null, out)
  t.equal(code, 0, out)
  t.match(out, /closed/)
  const line = out.split('\n').find((l) => l.startsWith('{'))
  const report = JSON.parse(line ?? '{}') as { closeMs: number, record: ReturnType<typeof newRecord>, heldReply: string }
  // Far below the timeouts a hang would wait for (long poll 90 s, handshake 15 s), and
  // generous for a busy machine
  t.ok(report.closeMs < 10_000, `close() took ${report.closeMs} ms`)
  t.same(report.record.aborted, report.record.started, 'every handler in the child saw its abort')
  t.equal(report.heldReply, '{"type":7,"allowReconnect":true}\u001e', 'the held poll got the Close')
})
