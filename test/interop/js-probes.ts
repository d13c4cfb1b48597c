// What the official JavaScript client observes of a server that hosts the scenario hub
// (test/fixtures/scenario-hub.ts here, bench/aspnetcore/Program.cs in ASP.NET Core): results,
// error texts, stream and upload endings, client results, message order in a burst, and
// what onclose receives. Each observation is a plain JSON value under a stable name, with
// nothing in it that changes from run to run, so two servers' answers compare field by field
// (test/crosscheck.test.ts). Only methods both hubs have are called. runHttpProbes does the
// same for plain HTTP: negotiate, the error answers, a Long Polling connection's life, and
// the head of a Server-Sent Events stream.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildClient, signalR, type ProtocolName, type TransportName } from '../fixtures/client.js'

export type Observations = Record<string, unknown>

const STEP_MS = 5000

/** A promise's outcome as data: { result } or { error: message }, or 'timeout'. */
async function settle (p: Promise<unknown>, ms = STEP_MS): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => { resolve('timeout') }, ms) })
  try {
    return await Promise.race([
      p.then((result) => ({ result: result === undefined ? '(undefined)' : result }), (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) })),
      timeout
    ])
  } finally {
    clearTimeout(timer)
  }
}

interface StreamOutcome { items: unknown[], end: string }

/** Subscribes to a server stream and reports its items and how it ended. */
async function streamOutcome (c: signalR.HubConnection, method: string, args: unknown[], take?: number): Promise<StreamOutcome> {
  const items: unknown[] = []
  return await new Promise<StreamOutcome>((resolve) => {
    const timer = setTimeout(() => { resolve({ items, end: 'timeout' }) }, STEP_MS)
    const done = (end: string): void => { clearTimeout(timer); resolve({ items, end }) }
    const sub = c.stream(method, ...args).subscribe({
      next (item) {
        items.push(item)
        if (take !== undefined && items.length === take) {
          sub.dispose()
          done('disposed by the client')
        }
      },
      complete () { done('complete') },
      error (err: unknown) { done(`error: ${err instanceof Error ? err.message : String(err)}`) }
    })
  })
}

interface Closable { connection: signalR.HubConnection, closed: Promise<string> }

/** A started connection, and what its onclose will receive ('no error' or the error's message). */
async function open (url: string, transport: TransportName, protocol: ProtocolName, user: string): Promise<Closable> {
  const connection = buildClient(url, { transport, protocol, user })
  const closed = new Promise<string>((resolve) => {
    connection.onclose((err) => { resolve(err === undefined ? 'no error' : `${err.name}: ${err.message}`) })
  })
  await connection.start()
  return { connection, closed }
}

/** Collects the first argument of every call of a client method. */
function inbox (c: signalR.HubConnection, method: string): unknown[] {
  const got: unknown[] = []
  c.on(method, (...args: unknown[]) => { got.push(args.length === 1 ? args[0] : args) })
  return got
}

async function waitFor (check: () => boolean, ms = STEP_MS): Promise<boolean> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) return false
    await sleep(5)
  }
  return true
}

/** The whole probe over one transport and protocol. Opens and stops its own connections. */
export async function runJsProbes (url: string, transport: TransportName, protocol: ProtocolName): Promise<Observations> {
  const run = randomUUID().slice(0, 8)
  const o: Observations = {}
  const opened: signalR.HubConnection[] = []
  const start = async (user: string): Promise<Closable> => {
    const c = await open(url, transport, protocol, `${user}-${run}`)
    opened.push(c.connection)
    return c
  }
  try {
    const { connection: a, closed: aClosed } = await start('a')
    const { connection: b } = await start('b')
    o.connectionId = /^[A-Za-z0-9_-]{22}$/.test(a.connectionId ?? '') ? '22 URL-safe characters' : a.connectionId

    // Results
    o['invoke Echo("hi")'] = await settle(a.invoke('Echo', 'hi'))
    o['invoke echo("lower case")'] = await settle(a.invoke('echo', 'lower case'))
    o['invoke Add(2, 3)'] = await settle(a.invoke('Add', 2, 3))
    o['invoke JoinGroup (void)'] = await settle(a.invoke('JoinGroup', `g-${run}`))
    o['invoke Echo("") (empty string)'] = await settle(a.invoke('Echo', ''))
    o['invoke Echo(unicode)'] = await settle(a.invoke('Echo', 'héllo ✓ 😀'))

    // Error texts
    o['invoke Echo(42)'] = await settle(a.invoke('Echo', 42))
    o['invoke Echo(null)'] = await settle(a.invoke('Echo', null))
    o['invoke Echo() (too few arguments)'] = await settle(a.invoke('Echo'))
    o['invoke Echo("a", "b") (too many arguments)'] = await settle(a.invoke('Echo', 'a', 'b'))
    o['invoke Add(2, 3.5)'] = await settle(a.invoke('Add', 2, 3.5))
    o['invoke Fail()'] = await settle(a.invoke('Fail'))
    o['invoke FailHub()'] = await settle(a.invoke('FailHub'))
    o['invoke NoSuchMethod()'] = await settle(a.invoke('NoSuchMethod'))
    o['invoke Counter(1, 1) (a streaming method)'] = await settle(a.invoke('Counter', 1, 1))
    o['stream Echo("x") (not a streaming method)'] = await streamOutcome(a, 'Echo', ['x'])
    o['invoke Sum() without its upload stream'] = await settle(a.invoke('Sum'))
    {
      const s1 = new signalR.Subject<number>()
      const s2 = new signalR.Subject<number>()
      const call = settle(a.invoke('Sum', s1, s2))
      s1.complete()
      s2.complete()
      o['invoke Sum(s1, s2) (one stream too many)'] = await call
    }
    o['send NoSuchMethod(), then invoke Echo'] = await settle(a.send('NoSuchMethod').then(async () => await a.invoke('Echo', 'still here')))
    o['send Echo(42) (no reply to a failed send), then invoke Echo'] = await settle(a.send('Echo', 42).then(async () => await a.invoke('Echo', 'still here')))

    // Server streams
    o['stream Counter(5, 10)'] = await streamOutcome(a, 'Counter', [5, 10])
    o['stream Counter(0, 0)'] = await streamOutcome(a, 'Counter', [0, 0])
    o['stream Counter("x", 1) (bad argument)'] = await streamOutcome(a, 'Counter', ['x', 1])
    {
      const r = await streamOutcome(a, 'Counter', [100, 20], 2)
      o['stream Counter(100, 20), disposed after 2 items'] = r
      o['invoke Echo after a disposed stream'] = await settle(a.invoke('Echo', 'after'))
    }

    // Upload streams
    {
      const s = new signalR.Subject<number>()
      const call = settle(a.invoke('Sum', s))
      for (const n of [1, 2, 3.5]) s.next(n)
      s.complete()
      o['upload Sum([1, 2, 3.5])'] = await call
    }
    {
      const s = new signalR.Subject<number>()
      const call = settle(a.invoke('Sum', s))
      s.complete()
      o['upload Sum([])'] = await call
    }
    {
      const s = new signalR.Subject<number>()
      const call = settle(a.invoke('Sum', s))
      s.next(1)
      s.error(new Error('client gave up'))
      o['upload Sum, the client ends the stream with an error'] = await call
    }
    {
      const s = new signalR.Subject<unknown>()
      const call = settle(a.invoke('Sum', s))
      s.next(1)
      s.next('x')
      s.complete()
      o['upload Sum([1, "x"]) (an item of the wrong type)'] = await call
    }
    o['invoke Echo after the uploads'] = await settle(a.invoke('Echo', 'after'))

    // Client results
    a.on('Ask', (q: string) => `yes:${q}`)
    o['invoke AskClient, the client answers'] = await settle(a.invoke('AskClient', 'q1'))
    a.off('Ask')
    a.on('Ask', () => { throw new Error('no answer') })
    o['invoke AskClient, the client handler throws'] = await settle(a.invoke('AskClient', 'q2'))
    a.off('Ask')
    o['invoke AskClient, no client handler'] = await settle(a.invoke('AskClient', 'q3'))
    a.on('Ask', async (q: string) => await new Promise((resolve) => setTimeout(() => { resolve(`later:${q}`) }, 20)))
    o['invoke AskClient, the client answers asynchronously'] = await settle(a.invoke('AskClient', 'q4'))

    // Fan-out: groups, users, and the order of a burst of broadcasts
    {
      const group = `g2-${run}`
      const got: unknown[] = []
      b.on('GroupMessage', (g: unknown, text: unknown) => { got.push(g === group ? text : ['another group', g, text]) })
      await a.invoke('SendGroup', group, 'before join')
      await b.invoke('JoinGroup', group)
      await a.invoke('SendGroup', group, 'member')
      await b.invoke('LeaveGroup', group)
      await a.invoke('SendGroup', group, 'after leave')
      await b.invoke('Echo', 'flush')
      await sleep(100)
      o['group: what a member that joined and left received'] = got
    }
    {
      const got = inbox(b, 'UserMessage')
      await a.invoke('SendUser', `b-${run}`, 'to user b')
      await a.invoke('SendUser', `nobody-${run}`, 'to no one')
      await waitFor(() => got.length >= 1)
      await sleep(50)
      o['user: what user b received'] = got
    }
    {
      const prefix = `burst-${run}-`
      const index = (m: unknown): unknown => typeof m === 'string' && m.startsWith(prefix) ? Number(m.slice(prefix.length)) : m
      const atA = inbox(a, 'Broadcast')
      const atB = inbox(b, 'Broadcast')
      const sends: Array<Promise<void>> = []
      for (let i = 0; i < 20; i++) sends.push(a.send('SendAll', `${prefix}${i}`))
      await Promise.all(sends)
      await waitFor(() => atA.length >= 20 && atB.length >= 20)
      o['burst: 20 SendAll as the sender received them'] = atA.map(index)
      o['burst: 20 SendAll as another connection received them'] = atB.map(index)
    }

    // Ending connections
    {
      const { connection: c, closed } = await start('c')
      c.on('Ask', async () => await new Promise(() => {}))   // never answers
      const pending = settle(c.invoke('AskClient', 'never answered'), STEP_MS)
      await c.send('Abort')
      o['Abort(): what onclose receives'] = await settle(closed)
      o['Abort(): a call pending at the time'] = await pending
      o['Abort(): state afterwards'] = c.state
    }
    {
      const { connection: d, closed } = await start('d')
      o['invoke Echo(40 000 characters) (over the 32 KB limit)'] = await settle(d.invoke('Echo', 'x'.repeat(40_000)))
      o['over the 32 KB limit: what onclose receives'] = await settle(closed)
    }
    o['invoke Echo(30 000 characters) (under the limit)'] = await settle(b.invoke('Echo', 'y'.repeat(30_000)).then((r) => typeof r === 'string' ? `${r.length} characters` : r))
    await a.stop()
    o['stop(): what onclose receives'] = await settle(aClosed)
  } finally {
    await Promise.all(opened.map(async (c) => { await c.stop() }))
  }
  return o
}

/** Plain HTTP requests to the hub's endpoints, as a client library would make them. */
export async function runHttpProbes (base: string, path = '/hubs/scenario'): Promise<Observations> {
  const o: Observations = {}
  const shape = (body: string): unknown => {
    let json: Record<string, unknown>
    try { json = JSON.parse(body) as Record<string, unknown> } catch { return body }
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(json).sort()) {
      const v = json[key]
      out[key] = (key === 'connectionId' || key === 'connectionToken') && typeof v === 'string'
        ? (/^[A-Za-z0-9_-]{22}$/.test(v) ? '22 URL-safe characters' : v)
        : v
    }
    return out
  }
  const probe = async (name: string, method: string, url: string, init: RequestInit = {}, json = false, headers: string[] = []): Promise<void> => {
    const res = await fetch(base + url, { method, ...init, signal: AbortSignal.timeout(STEP_MS) })
    const text = await res.text()
    o[`${name}: status`] = res.status
    o[`${name}: content-type`] = res.headers.get('content-type')
    for (const h of headers) o[`${name}: ${h}`] = res.headers.get(h)
    o[`${name}: body`] = json ? shape(text) : text
  }
  const token = async (): Promise<string> => {
    const res = await fetch(`${base}${path}/negotiate?negotiateVersion=1`, { method: 'POST', signal: AbortSignal.timeout(STEP_MS) })
    return (JSON.parse(await res.text()) as { connectionToken: string }).connectionToken
  }
  await probe('POST negotiate?negotiateVersion=1', 'POST', `${path}/negotiate?negotiateVersion=1`, {}, true)
  await probe('POST negotiate (version 0)', 'POST', `${path}/negotiate`, {}, true)
  await probe('POST negotiate?negotiateVersion=1&useStatefulReconnect=true', 'POST', `${path}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, {}, true)
  await probe('GET negotiate', 'GET', `${path}/negotiate`)
  await probe('GET hub?id=unknown (a poll)', 'GET', `${path}?id=unknown`)
  await probe('POST hub?id=unknown', 'POST', `${path}?id=unknown`, { body: 'x' })
  await probe('DELETE hub?id=unknown', 'DELETE', `${path}?id=unknown`)
  await probe('GET hub without id', 'GET', path)
  await probe('PUT hub?id=unknown', 'PUT', `${path}?id=unknown`)

  // A Long Polling connection's life, in raw requests as a client makes them
  const lp = `${path}?id=${await token()}`
  const RS = '\x1e'
  await probe('LP first poll', 'GET', lp, {}, false, ['cache-control', 'pragma', 'expires', 'content-length'])
  await probe('LP POST handshake', 'POST', lp, { body: `{"protocol":"json","version":1}${RS}` })
  await probe('LP poll: the handshake response', 'GET', lp)
  await probe('LP POST Echo invocation', 'POST', lp, { body: `{"type":1,"invocationId":"1","target":"Echo","arguments":["hi"]}${RS}` })
  await probe('LP poll: the Completion', 'GET', lp)
  await probe('LP DELETE', 'DELETE', lp)

  // Server-Sent Events: the response head and the first bytes of the stream
  {
    const sse = `${path}?id=${await token()}`
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort() }, STEP_MS)
    try {
      const res = await fetch(base + sse, { headers: { accept: 'text/event-stream' }, signal: controller.signal })
      o['SSE GET: status'] = res.status
      for (const h of ['content-type', 'cache-control', 'content-encoding']) o[`SSE GET: ${h}`] = res.headers.get(h)
      const reader = (res.body as ReadableStream<Uint8Array>).getReader()
      const decoder = new TextDecoder()
      let text = ''
      const readUntil = async (done: (t: string) => boolean): Promise<void> => {
        while (!done(text)) {
          const chunk = await reader.read()
          if (chunk.done) break
          text += decoder.decode(chunk.value, { stream: true })
        }
      }
      await readUntil((t) => t.length > 0)
      o['SSE GET: the first bytes'] = text
      text = ''
      await probe('SSE POST handshake', 'POST', sse, { body: `{"protocol":"json","version":1}${RS}` })
      await readUntil((t) => t.endsWith('\r\n\r\n'))
      o['SSE GET: the handshake response event'] = text
    } finally {
      clearTimeout(timer)
      controller.abort()
    }
  }
  return o
}
