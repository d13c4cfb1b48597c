// The official JavaScript client over WebSockets, JSON: every item of the core issue.
import { test } from 'tap'
import { connect, nextCall, record, signalR } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'

test('invoke returns the result; void methods resolve with null', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  t.equal(await c.invoke('Echo', 'hi'), 'hi')
  t.equal(await c.invoke('Add', 2, 3), 5)
  t.equal(await c.invoke('JoinGroup', 'g'), null)
})

test('method names are looked up case-insensitively', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  t.equal(await c.invoke('echo', 'a'), 'a')
  t.equal(await c.invoke('ECHO', 'b'), 'b')
})

test('send without an invocationId runs the method and gets no reply', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  const got = nextCall(c, 'Broadcast')
  await c.send('SendAll', 'fire')
  t.same(await got, ['fire'])
})

test('an invalid argument is refused before the handler runs, naming the argument', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  await t.rejects(c.invoke('Echo', 42), {
    message: "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked. Argument 0 is invalid: must be string."
  })
  await t.rejects(c.invoke('Add', 1, 'x'), { message: /Argument 1 is invalid: must be integer/ })
  await t.rejects(c.invoke('Add', 1.5, 2), { message: /Argument 0 is invalid/ })
})

test('a wrong argument count gets the .NET server message', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  await t.rejects(c.invoke('Add', 1), {
    message: "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 2."
  })
})

test('an unknown method gets the .NET server message', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  await t.rejects(c.invoke('NoSuchMethod'), {
    message: "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist."
  })
})

test('a throwing handler gets a generic message; HubError text always goes through', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  await t.rejects(c.invoke('Fail'), { message: "An unexpected error occurred invoking 'Fail' on the server." })
  await t.rejects(c.invoke('FailHub'), { message: "An unexpected error occurred invoking 'FailHub' on the server. HubException: boom" })
  t.equal(await c.invoke('Echo', 'still alive'), 'still alive')
})

test('enableDetailedErrors shows the exception', async (t) => {
  const { url } = await startServer(t, { plugin: { enableDetailedErrors: true } })
  const c = await connect(t, url)
  await t.rejects(c.invoke('Fail'), { message: "An unexpected error occurred invoking 'Fail' on the server. Error: secret detail" })
})

test('broadcast reaches every connection; others excludes the caller', async (t) => {
  const { url } = await startServer(t)
  const a = await connect(t, url)
  const b = await connect(t, url)
  const gotA = nextCall(a, 'Broadcast')
  const gotB = nextCall(b, 'Broadcast')
  await a.invoke('SendAll', 'x')
  t.same(await gotA, ['x'])
  t.same(await gotB, ['x'])
  const onA = record(a, 'Broadcast')
  const gotB2 = nextCall(b, 'Broadcast')
  await a.invoke('SendOthers', 'y')
  t.same(await gotB2, ['y'])
  await a.invoke('Echo', 'flush')
  t.same(onA, [], 'the caller is not among the others')
})

test('groups: join, send, leave', async (t) => {
  const { url } = await startServer(t)
  const a = await connect(t, url)
  const b = await connect(t, url)
  const onB = record(b, 'GroupMessage')
  await a.invoke('JoinGroup', 'g1')
  const got = nextCall(a, 'GroupMessage')
  await b.invoke('SendGroup', 'g1', 'hello')
  t.same(await got, ['g1', 'hello'])
  await a.invoke('LeaveGroup', 'g1')
  await b.invoke('SendGroup', 'g1', 'gone')
  const onA = record(a, 'GroupMessage')
  await a.invoke('Echo', 'flush')
  await b.invoke('Echo', 'flush')
  t.same(onA, [], 'no message after leaving')
  t.same(onB, [], 'non-members get nothing')
})

test('users: one user on several connections', async (t) => {
  const { url } = await startServer(t)
  const a1 = await connect(t, url, { user: 'alice' })
  const a2 = await connect(t, url, { user: 'alice' })
  const b = await connect(t, url, { user: 'bob' })
  const onB = record(b, 'UserMessage')
  const got1 = nextCall(a1, 'UserMessage')
  const got2 = nextCall(a2, 'UserMessage')
  await b.invoke('SendUser', 'alice', 'hi alice')
  t.same(await got1, ['hi alice'])
  t.same(await got2, ['hi alice'])
  t.same(onB, [])
})

test('skipNegotiation connects over WebSockets without negotiate', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url, { skipNegotiation: true })
  t.equal(await c.invoke('Echo', 'skip'), 'skip')
})

test('the client reports the Close the server sends on abort()', async (t) => {
  const { url } = await startServer(t)
  const c = await connect(t, url)
  const closed = new Promise<Error | undefined>((resolve) => { c.onclose(resolve) })
  await c.send('Abort')
  t.equal(await closed, undefined, 'a Close without error')
  t.equal(c.state, signalR.HubConnectionState.Disconnected)
})
