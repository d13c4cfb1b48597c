// Connection lifetime with the official client: onConnected/onDisconnected, sends from
// outside the hub, presence, and index cleanup on disconnect.
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import Type from 'typebox'
import { defineHub, type InvocationContext } from '../index.js'
import { buildClient, connect, nextCall, signalR } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

test('onConnected and onDisconnected run once each, with ctx and the reason', async (t) => {
  const events: string[] = []
  let disconnectError: Error | undefined | null = null
  const hub = defineHub({
    methods: { Who: { args: [], handler: (ctx) => ctx.items.get('name') } },
    onConnected (ctx) {
      events.push(`connected ${ctx.userId ?? ''}`)
      ctx.items.set('name', 'from onConnected')
    },
    onDisconnected (ctx, error) {
      events.push(`disconnected ${ctx.userId ?? ''}`)
      disconnectError = error
    }
  })
  const { url } = await startServer(t, { hub })
  const c = await connect(t, url, { user: 'u1' })
  t.equal(await c.invoke('Who'), 'from onConnected', 'items live as long as the connection')
  await c.stop()
  await until(() => events.length === 2)
  t.same(events, ['connected u1', 'disconnected u1'])
  t.equal(disconnectError, undefined, 'a clean stop has no error')
})

test('an onConnected that throws closes the connection with an error Close', async (t) => {
  const hub = defineHub({ methods: {}, onConnected () { throw new Error('nope') } })
  const { url } = await startServer(t, { hub })
  const c = buildClient(url)
  const closed = new Promise<Error | undefined>((resolve) => { c.onclose(resolve) })
  // The Close can beat start() to the finish line: either way the client is told why
  const error = await c.start().then(async () => await closed, (err: Error) => err)
  t.match(error?.message, /Connection closed with an error\./)
  t.equal(c.state, signalR.HubConnectionState.Disconnected)
})

test('app.signalr.hub(path) sends from ordinary routes and answers presence queries', async (t) => {
  const { app, url } = await startServer(t, {
    setup (app) {
      app.post('/notify/:group', async (request) => {
        const { group } = request.params as { group: string }
        await app.signalr.hub('/hubs/scenario').clients.group(group).send('Notify', request.body)
        return { ok: true }
      })
    }
  })
  const a = await connect(t, url, { user: 'alice' })
  const a2 = await connect(t, url, { user: 'alice' })
  const b = await connect(t, url, { user: 'bob' })
  await a.invoke('JoinGroup', 'admins')
  await b.invoke('JoinGroup', 'admins')
  await b.invoke('JoinGroup', 'other')
  const got = nextCall(a, 'Notify')
  const res = await app.inject({ method: 'POST', url: '/notify/admins', payload: { text: 'hi' } })
  t.equal(res.statusCode, 200)
  t.same(await got, [{ text: 'hi' }])

  const hub = app.signalr.hub('/hubs/scenario')
  t.same((await hub.groupMembers('admins')).sort(), [a.connectionId, b.connectionId].sort())
  t.same((await hub.groupsOf(b.connectionId as string)).sort(), ['admins', 'other'])
  t.same((await hub.userConnections('alice')).sort(), [a.connectionId, a2.connectionId].sort())
  t.equal(await hub.isUserOnline('alice'), true)
  t.equal(await hub.isUserOnline('carol'), false)
  t.equal(await hub.connectionCount(), 3)
  t.same((await hub.connections()).sort(), [a.connectionId, a2.connectionId, b.connectionId].sort())
  t.same(app.signalr.paths, ['/hubs/scenario'])

  await b.stop()
  await until(async () => (await hub.connectionCount()) === 2)
  t.same(await hub.groupMembers('other'), [], 'a disconnected connection leaves every group')
  t.same(await hub.groupMembers('admins'), [a.connectionId])
  await a.stop()
  await a2.stop()
  await until(async () => (await hub.connectionCount()) === 0)
  t.equal(await hub.isUserOnline('alice'), false, 'the user index is cleaned up')
  t.same(await hub.groupMembers('admins'), [])
})

test('every clients target reaches exactly its connections', async (t) => {
  const received = new Map<string, string[]>()
  let ctxRef: InvocationContext | undefined
  const hub = defineHub({
    methods: {
      Target: {
        args: [Type.String(), Type.Array(Type.String())],
        async handler (ctx, kind, ids) {
          ctxRef = ctx
          const c = ctx.clients
          const proxies = {
            all: c.all,
            caller: c.caller,
            others: c.others,
            client: c.client(ids[0]),
            clients: c.clients(ids),
            allExcept: c.allExcept(ids),
            group: c.group('g'),
            groups: c.groups(['g', 'h']),
            groupExcept: c.groupExcept('g', ids),
            othersInGroup: c.othersInGroup('g'),
            user: c.user('u1'),
            users: c.users(['u1', 'u2'])
          } as const
          await proxies[kind as keyof typeof proxies].send('Hit', kind)
        }
      },
      Join: { args: [Type.String()], async handler (ctx, g) { await ctx.groups.add(ctx.connectionId, g) } }
    }
  })
  const { url } = await startServer(t, { hub })
  const conns = await Promise.all([
    connect(t, url, { user: 'u1' }), connect(t, url, { user: 'u2' }), connect(t, url, { user: 'u3' }), connect(t, url, { user: 'u1' })
  ])
  const names = ['c0(u1)', 'c1(u2)', 'c2(u3)', 'c3(u1)']
  conns.forEach((c, i) => c.on('Hit', (kind: string) => {
    const list = received.get(kind) ?? []
    list.push(names[i])
    received.set(kind, list)
  }))
  await conns[0].invoke('Join', 'g')
  await conns[1].invoke('Join', 'g')
  await conns[2].invoke('Join', 'h')
  const ids = [conns[1].connectionId as string, conns[2].connectionId as string]
  const kinds = ['all', 'caller', 'others', 'client', 'clients', 'allExcept', 'group', 'groups', 'groupExcept', 'othersInGroup', 'user', 'users']
  for (const kind of kinds) await conns[0].invoke('Target', kind, ids)
  for (const c of conns) await c.invoke('Join', 'flush')
  const sorted = (k: string): string[] => (received.get(k) ?? []).sort()
  t.same(sorted('all'), names)
  t.same(sorted('caller'), ['c0(u1)'])
  t.same(sorted('others'), ['c1(u2)', 'c2(u3)', 'c3(u1)'])
  t.same(sorted('client'), ['c1(u2)'])
  t.same(sorted('clients'), ['c1(u2)', 'c2(u3)'])
  t.same(sorted('allExcept'), ['c0(u1)', 'c3(u1)'])
  t.same(sorted('group'), ['c0(u1)', 'c1(u2)'])
  t.same(sorted('groups'), ['c0(u1)', 'c1(u2)', 'c2(u3)'])
  t.same(sorted('groupExcept'), ['c0(u1)'])
  t.same(sorted('othersInGroup'), ['c1(u2)'])
  t.same(sorted('user'), ['c0(u1)', 'c3(u1)'])
  t.same(sorted('users'), ['c0(u1)', 'c1(u2)', 'c3(u1)'])
  t.ok(ctxRef)
})

test('bad names are refused at the boundary with an FST_SIGNALR_ error', async (t) => {
  const { app, url } = await startServer(t)
  await connect(t, url)
  const hub = app.signalr.hub('/hubs/scenario')
  t.throws(() => hub.clients.group(''), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  t.throws(() => hub.clients.users([1 as unknown as string]), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  await t.rejects(hub.clients.all.send(''), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  await t.rejects(hub.groups.add('x', ''), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  t.throws(() => app.signalr.hub('/nope'), { code: 'FST_SIGNALR_UNKNOWN_HUB' })
})

test('maximumParallelInvocationsPerClient: calls beyond the limit wait their turn', async (t) => {
  let running = 0
  let peak = 0
  const hub = defineHub({
    methods: {
      Slow: {
        args: [Type.Integer()],
        async handler (_ctx, ms) {
          running++
          peak = Math.max(peak, running)
          await sleep(ms)
          running--
          return ms
        }
      }
    }
  })
  const one = await startServer(t, { hub })
  const c1 = await connect(t, one.url)
  t.same(await Promise.all([c1.invoke('Slow', 30), c1.invoke('Slow', 30), c1.invoke('Slow', 30)]), [30, 30, 30])
  t.equal(peak, 1, 'one at a time by default')
  peak = 0
  const three = await startServer(t, { hub, plugin: { maximumParallelInvocationsPerClient: 3 } })
  const c3 = await connect(t, three.url)
  await Promise.all([c3.invoke('Slow', 50), c3.invoke('Slow', 50), c3.invoke('Slow', 50)])
  t.equal(peak, 3, 'three at once when allowed')
})

test('async handlers and results of every JSON type', async (t) => {
  const hub = defineHub({
    methods: {
      Values: {
        args: [],
        async handler () {
          await sleep(1)
          return { n: 1, s: 'x', b: true, a: [1, null], o: { nested: { deep: 'y' } } }
        }
      },
      Nothing: { args: [], handler: () => undefined }
    }
  })
  const { url } = await startServer(t, { hub })
  const c = await connect(t, url)
  t.same(await c.invoke('Values'), { n: 1, s: 'x', b: true, a: [1, null], o: { nested: { deep: 'y' } } })
  t.equal(await c.invoke('Nothing'), null)
})
