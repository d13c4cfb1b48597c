// A real cross-origin check in headless Chromium of the README's Security › CORS example.
// The hub runs on its own Fastify server (origin B), configured exactly as the README says:
// @fastify/cors with the exact origin list, credentials, GET/POST/DELETE and the four request
// headers, then fastify-signalr with allowedOrigins set to the same list (the Server-Sent
// Events stream carries the headers @fastify/cors set on the reply: no hook copies them). Pages come from two other
// servers: origin A, in the list, and origin C, not in it (same host, other ports: the port
// is part of the origin). From each page the official browser bundle connects to B with its
// defaults (withCredentials: true) and an accessTokenFactory.
//
// From A every transport connects and Echo answers; a cookie set for B's host arrives on
// every request, which it does only in credentials mode, so the CORS answers allowed
// credentials. From C the browser's preflight of negotiate gets no
// Access-Control-Allow-Origin, so the browser never sends negotiate and the client fails
// before choosing a transport; with skipNegotiation + WebSockets (CORS does not cover
// WebSockets) allowedOrigins refuses the upgrade with 403.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import cors from '@fastify/cors'
import { test } from 'tap'
import signalr from '../index.js'
import { browserBundles, chromiumSkip, classify, launchChromium, type Kind } from './fixtures/browser.js'
import type { TransportName } from './fixtures/client.js'
import { listen } from './fixtures/listen.js'
import { scenarioHub } from './fixtures/scenario-hub.js'

const HUB = '/hubs/chat'
const TRANSPORTS: TransportName[] = ['WebSockets', 'ServerSentEvents', 'LongPolling']
const COOKIE = { name: 'session', value: 'cookie-for-the-hub-host' }

// The page: the UMD bundle as an application includes it, and one entry point that connects,
// invokes Echo and reports what the client said (its result or its error, and its log)
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>fastify-signalr CORS</title>
<script src="/signalr.js"></script>
<script>
window.tryConnect = async ({ hubUrl, transport, skipNegotiation, token, text }) => {
  const logs = []
  const logger = { log (level, message) { if (level >= signalR.LogLevel.Warning) logs.push(signalR.LogLevel[level] + ': ' + message) } }
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, { transport: signalR.HttpTransportType[transport], skipNegotiation, accessTokenFactory: () => token })
    .configureLogging(logger)
    .build()
  try {
    await connection.start()
  } catch (e) {
    return { started: false, error: { name: e.name, errorType: e.errorType, message: e.message }, state: connection.state, logs }
  }
  try {
    return { started: true, echo: await connection.invoke('Echo', text), logs }
  } finally {
    await connection.stop()
  }
}
window.pageReady = true
</script>
</head><body></body></html>
`

interface Outcome {
  started: boolean
  echo?: string
  error?: { name: string, errorType?: string, message: string }
  state?: string
  logs: string[]
}

interface Seen {
  kind: Kind
  attempt: string | undefined
  origin: string | undefined
  cookie: string | undefined
  authorization: string | undefined
  accessToken: string | undefined
  status?: number
  allowOrigin?: string
  allowCredentials?: string
}

/** The requests each transport makes after its preflights (the browser caches some of those). */
const EXPECTED_KINDS: Record<TransportName, Kind[]> = {
  WebSockets: ['negotiate', 'ws'],
  ServerSentEvents: ['negotiate', 'sse', 'send'],
  LongPolling: ['negotiate', 'poll', 'send', 'delete']
}
/** Browsers cannot set headers on a WebSocket upgrade or an EventSource: the token goes in the query. */
const TOKEN_IN_QUERY = new Set<Kind>(['ws', 'sse'])

const skip = chromiumSkip('the cross-origin browser test')

test('the README CORS example, cross-origin in headless Chromium', { skip }, async (t) => {
  const { signalr: signalrJs } = await browserBundles()

  // Origins A (allowed) and C (not allowed): the same page from two servers
  async function pageServer (): Promise<string> {
    const app = Fastify({ forceCloseConnections: true })
    app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
    app.get('/signalr.js', async (_request, reply) => reply.type('text/javascript').send(signalrJs))
    app.get('/favicon.ico', async (_request, reply) => reply.code(204).send())
    return await listen(t, app)
  }
  const originA = await pageServer()
  const originC = await pageServer()

  // Origin B: the hub, set up as the README's example, after hooks that only watch
  const seen: Seen[] = []
  const entries = new WeakMap<FastifyRequest, Seen>()
  function watch (app: FastifyInstance): void {
    app.addHook('onRequest', async (request) => {
      const query = request.query as Record<string, string | undefined>
      const entry: Seen = {
        kind: classify(request),
        attempt: query.attempt,
        origin: request.headers.origin,
        cookie: request.headers.cookie,
        authorization: request.headers.authorization,
        accessToken: query.access_token
      }
      seen.push(entry)
      entries.set(request, entry)
    })
    // Not called for the SSE stream, which the transport writes on the raw response
    app.addHook('onResponse', async (request, reply) => {
      const entry = entries.get(request)
      if (entry === undefined) return
      entry.status = reply.statusCode
      entry.allowOrigin = reply.getHeader('access-control-allow-origin') as string | undefined
      entry.allowCredentials = reply.getHeader('access-control-allow-credentials') as string | undefined
    })
  }
  async function hubServer (): Promise<string> {
    const app = Fastify({ forceCloseConnections: true })
    watch(app)
    // --- as in README.md, Security › CORS ---
    const origins = [originA]
    await app.register(cors, {
      origin: origins,
      credentials: true,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['x-requested-with', 'x-signalr-user-agent', 'authorization', 'content-type']
    })
    await app.register(signalr, { allowedOrigins: origins })
    app.hub(HUB, scenarioHub)
    // ---
    return await listen(t, app)
  }
  const originB = await hubServer()
  t.not(new URL(originA).origin, new URL(originB).origin, 'the page and the hub are on different origins')

  const { context, page } = await launchChromium(t)
  // A cookie for the hub's host (ports do not separate cookies, and A, B and C are same-site):
  // the browser sends it cross-origin only in credentials mode
  await context.addCookies([{ ...COOKIE, domain: '127.0.0.1', path: '/', sameSite: 'Lax' }])
  const consoleErrors: string[] = []
  const pageErrors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()) })
  page.on('pageerror', (err) => { pageErrors.push(err.message) })

  async function open (origin: string): Promise<void> {
    consoleErrors.length = 0
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true, undefined, { timeout: 5000 })
  }
  async function attempt (name: string, transport: TransportName, skipNegotiation = false, hub = originB): Promise<{ outcome: Outcome, requests: Seen[], token: string }> {
    const token = `token-${name}-${Math.random().toString(36).slice(2)}`
    const outcome = await page.evaluate(
      async (args) => await (window as unknown as { tryConnect: (a: unknown) => Promise<Outcome> }).tryConnect(args),
      { hubUrl: `${hub}${HUB}?attempt=${name}`, transport, skipNegotiation, token, text: `hello from ${name}` }
    )
    return { outcome, requests: seen.filter((s) => s.attempt === name), token }
  }

  await t.test('from an allowed origin every transport connects with credentials and a token', async (t) => {
    await open(originA)
    for (const transport of TRANSPORTS) {
      const name = `A-${transport}`
      const { outcome, requests, token } = await attempt(name, transport)
      t.same(outcome, { started: true, echo: `hello from ${name}`, logs: [] }, `${transport}: connected, Echo answered, nothing logged`)
      const main = requests.filter((r) => r.kind !== 'preflight')
      t.same([...new Set(main.map((r) => r.kind))].sort(), [...EXPECTED_KINDS[transport]].sort(), `${transport}: made its own kinds of request`)
      t.ok(requests.some((r) => r.kind === 'preflight'), `${transport}: negotiate was preflighted`)
      t.same(requests.filter((r) => r.origin !== originA), [], `${transport}: every request came with Origin ${originA}`)
      t.same(main.filter((r) => r.cookie !== `${COOKIE.name}=${COOKIE.value}`), [], `${transport}: the cookie came on every request (credentials mode)`)
      t.same(main.filter((r) => TOKEN_IN_QUERY.has(r.kind)
        ? r.accessToken !== token || r.authorization !== undefined
        : r.authorization !== `Bearer ${token}` || r.accessToken !== undefined), [], `${transport}: the token on every request, in the query only on ws/sse`)
      // Every answer Fastify finished (not the SSE stream, which the transport writes itself)
      const answered = requests.filter((r) => r.status !== undefined && r.kind !== 'ws')
      t.same(answered.filter((r) => r.allowOrigin !== originA || r.allowCredentials !== 'true'), [],
        `${transport}: ${answered.length} HTTP answers carry Access-Control-Allow-Origin ${originA} and -Credentials true`)
    }
    const { outcome } = await attempt('A-skip', 'WebSockets', true)
    t.same(outcome, { started: true, echo: 'hello from A-skip', logs: [] }, 'skipNegotiation + WebSockets connects too')
    // stop() posts a Close message without waiting for it and ends the transport at once: SSE
    // closes its EventSource, Long Polling sends its DELETE. Either may reach the server first
    // (cross-origin the POST also waits for its preflight), and the late Close POST then finds
    // no connection and gets 404 (ASP.NET Core answers it the same way). Nothing else may fail.
    const lastSend = new Map<string, Seen>()
    for (const r of seen) if (r.kind === 'send' && r.attempt !== undefined) lastSend.set(r.attempt, r)
    const lateClose = (r: Seen): boolean => r.kind === 'send' && r.status === 404 && r.attempt !== undefined &&
      ['A-ServerSentEvents', 'A-LongPolling'].includes(r.attempt) && lastSend.get(r.attempt) === r
    const failed = seen.filter((r) => r.attempt?.startsWith('A-') === true && r.status !== undefined && r.status >= 400)
    t.same(failed.filter((r) => !lateClose(r)), [],
      'no request failed but, at most, the Close message SSE or Long Polling posts as it stops')
    t.same(consoleErrors.filter((m) => !m.includes('status of 404')), [], 'the browser logged no other errors (no CORS errors)')
    t.ok(consoleErrors.length <= failed.length, 'and no more 404s than the server answered')
  })

  await t.test('from an origin not in the list no transport connects', async (t) => {
    await open(originC)
    for (const transport of TRANSPORTS) {
      const name = `C-${transport}`
      const { outcome, requests } = await attempt(name, transport)
      t.comment(`${transport}: ${JSON.stringify(outcome)}`)
      t.equal(outcome.started, false, `${transport}: start() rejected`)
      t.equal(outcome.error?.errorType, 'FailedToNegotiateWithServerError', `${transport}: a negotiation error`)
      t.equal(outcome.error?.message, 'Failed to complete negotiation with the server: TypeError: Failed to fetch', `${transport}: the fetch was blocked`)
      t.equal(outcome.state, 'Disconnected', `${transport}: the connection is Disconnected`)
      t.same(requests.map((r) => r.kind), ['preflight'], `${transport}: B saw the preflight only, never negotiate nor a transport request`)
      t.same(requests.map((r) => [r.origin, r.allowOrigin]), [[originC, undefined]], `${transport}: and answered it without Access-Control-Allow-Origin`)
    }
    t.comment(`Chromium logged: ${JSON.stringify(consoleErrors)}`)
    t.ok(consoleErrors.some((m) => m.includes('blocked by CORS policy')), 'Chromium logged the CORS block')

    const { outcome, requests } = await attempt('C-skip', 'WebSockets', true)
    t.comment(`skipNegotiation + WebSockets: ${JSON.stringify(outcome)}`)
    t.equal(outcome.started, false, 'skipNegotiation + WebSockets: start() rejected')
    t.same(requests.map((r) => [r.kind, r.origin, r.status]), [['ws', originC, 403]], 'the upgrade came with Origin C and got 403')
    t.equal(outcome.state, 'Disconnected', 'the connection is Disconnected')
  })

  t.same(pageErrors, [], 'no uncaught errors in the pages')
})
