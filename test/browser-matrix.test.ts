// The shared scenario (test/fixtures/scenario.ts) in headless Chromium with the official
// browser bundles of @microsoft/signalr and @microsoft/signalr-protocol-msgpack, over every
// valid transport and protocol. The page imports scenario.ts itself, transpiled by esbuild,
// so Node and the browser run the same checks. An onRequest hook records where the access
// token arrives: the browser client puts it in the `access_token` query parameter on the
// WebSocket upgrade and the SSE GET (browsers cannot set headers there) and in the
// Authorization header everywhere else (signalr-wire.md §2.1, §2.2, §7). The typed client
// (fastify-signalr/client) runs its scenario there too, bundled by esbuild as an application
// bundles it: the bundle must hold the wrapper and nothing of the server or its schemas.
import { readFile } from 'node:fs/promises'
import { transform } from 'esbuild'
import { test } from 'tap'
import { browserBundles, bundleForPage, chromiumSkip, classify, fromRoot, launchChromium, type Kind } from './fixtures/browser.js'
import { VALID_MATRIX, type TransportName } from './fixtures/client.js'
import type { Check } from './fixtures/scenario.js'
import { startServer } from './fixtures/server.js'
import { typedChat } from './fixtures/typed-hub.js'

const matrix = VALID_MATRIX

// The page: the two UMD bundles as an application includes them, then a module that imports
// the shared scenario and exposes one entry point for the test to call
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>fastify-signalr browser matrix</title>
<script src="/browser/signalr.js"></script>
<script src="/browser/signalr-protocol-msgpack.js"></script>
<script type="module">
import { runScenario } from '/browser/scenario.js'
import { runTypedScenario } from '/browser/typed-scenario.js'

async function connect (hubUrl, transport, protocol, token, user) {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl + '?user=' + encodeURIComponent(user), {
      transport: signalR.HttpTransportType[transport],
      accessTokenFactory: () => token
    })
    .configureLogging(signalR.LogLevel.Error)
  if (protocol === 'messagepack') builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
  const connection = builder.build()
  await connection.start()
  return connection
}

window.runMatrix = async ({ hubUrl, transport, protocol, token, userA, userB }) => {
  const a = await connect(hubUrl, transport, protocol, token, userA)
  const b = await connect(hubUrl, transport, protocol, token, userB)
  try {
    return await runScenario(a, b, userA)
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}
window.runTyped = async ({ hubUrl, transport, protocol }) => {
  const a = await connect(hubUrl, transport, protocol, 'typed', 'typed-a')
  const b = await connect(hubUrl, transport, protocol, 'typed', 'typed-b')
  try {
    return await runTypedScenario(a, b, () => new signalR.Subject())
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}
window.matrixReady = true
</script>
</head><body></body></html>
`

interface Arrival {
  kind: Kind
  user: string | undefined
  authorization: string | undefined
  accessToken: string | undefined
}

/** Where the browser client must put the token, per request kind (signalr-wire.md §7). */
const TOKEN_IN_QUERY: Record<Kind, boolean> = {
  preflight: false, negotiate: false, ws: true, sse: true, poll: false, send: false, delete: false, other: false
}

/** The transport requests each transport must have made. */
const EXPECTED_KINDS: Record<TransportName, Kind[]> = {
  WebSockets: ['negotiate', 'ws'],
  ServerSentEvents: ['negotiate', 'sse', 'send'],
  LongPolling: ['negotiate', 'poll', 'send', 'delete']
}

const skip = chromiumSkip('the browser matrix')

test('the shared scenario in headless Chromium with the official browser bundles', { skip }, async (t) => {
  // The scenario module, transpiled as is; it imports only types, so it needs no bundling
  const scenarioJs = (await transform(await readFile(fromRoot('test/fixtures/scenario.ts'), 'utf8'), {
    loader: 'ts', format: 'esm', target: 'es2022', sourcefile: 'scenario.ts'
  })).code
  t.notMatch(scenarioJs, /^\s*import\s/m, 'the transpiled scenario has no runtime imports to resolve in the page')
  const { signalr: signalrJs, msgpack: msgpackJs } = await browserBundles()
  // The typed scenario as an application bundles its client code: the official client stays
  // the page's <script>, everything else the entry imports is bundled
  const { js: typedJs, inputs } = await bundleForPage(fromRoot('test/fixtures/typed-scenario.ts'))
  t.same(inputs, ['lib/client/index.ts', 'test/fixtures/typed-scenario.ts'],
    'the bundle is the wrapper and the scenario: the hub, its schemas and the server stay out')
  t.notMatch(typedJs, /typebox|fastify|defineHub|maxLength|createError/, 'no schema or server code in the bundle text')

  const arrivals: Arrival[] = []
  const server = await startServer(t, {
    setup (app) {
      app.get('/browser/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
      app.get('/browser/signalr.js', async (_request, reply) => reply.type('text/javascript').send(signalrJs))
      app.get('/browser/signalr-protocol-msgpack.js', async (_request, reply) => reply.type('text/javascript').send(msgpackJs))
      app.get('/browser/scenario.js', async (_request, reply) => reply.type('text/javascript').send(scenarioJs))
      app.get('/browser/typed-scenario.js', async (_request, reply) => reply.type('text/javascript').send(typedJs))
      app.hub('/hubs/typed', typedChat)
    },
    route: {
      async onRequest (request) {
        const query = request.query as Record<string, string | undefined>
        arrivals.push({
          kind: classify(request),
          user: query.user,
          authorization: request.headers.authorization,
          accessToken: query.access_token
        })
      }
    }
  })

  const { page } = await launchChromium(t)
  const pageErrors: string[] = []
  page.on('pageerror', (err) => { pageErrors.push(err.message) })
  await page.goto(`${server.base}/browser/`)
  await page.waitForFunction(() => (window as unknown as { matrixReady?: boolean }).matrixReady === true, undefined, { timeout: 5000 })

  for (const [transport, protocol] of matrix) {
    await t.test(`${transport} / ${protocol}`, async (t) => {
      const tag = `${transport}-${protocol}`
      const token = `token-${tag}-${Math.random().toString(36).slice(2)}`
      const userA = `browser-a-${tag}`
      const userB = `browser-b-${tag}`
      const checks = await page.evaluate(
        async (args) => await (window as unknown as { runMatrix: (a: unknown) => Promise<Check[]> }).runMatrix(args),
        { hubUrl: server.url, transport, protocol, token, userA, userB }
      )
      t.ok(checks.length > 0, 'the scenario ran')
      for (const c of checks) t.ok(c.ok, `${c.name} ${c.detail ?? ''}`)

      const mine = arrivals.filter((a) => a.user === userA || a.user === userB)
      const kinds = new Set(mine.map((a) => a.kind))
      t.same([...kinds].sort(), [...EXPECTED_KINDS[transport]].sort(), `${transport} made exactly its own kinds of request`)
      // Every request of this run, each checked: the token where the spec puts it, and only there
      const misplaced = mine.filter((a) => TOKEN_IN_QUERY[a.kind]
        ? a.accessToken !== token || a.authorization !== undefined
        : a.authorization !== `Bearer ${token}` || a.accessToken !== undefined)
      t.same(misplaced, [], `token in the query on ${EXPECTED_KINDS[transport].filter((k) => TOKEN_IN_QUERY[k]).join(', ') || 'nothing'}, in Authorization on the rest (${mine.length} requests)`)

      const typedChecks = await page.evaluate(
        async (args) => await (window as unknown as { runTyped: (a: unknown) => Promise<Check[]> }).runTyped(args),
        { hubUrl: `${server.base}/hubs/typed`, transport, protocol }
      )
      t.ok(typedChecks.length > 0, 'the typed scenario ran')
      for (const c of typedChecks) t.ok(c.ok, `typed client: ${c.name} ${c.detail ?? ''}`)
    })
  }
  t.same(pageErrors, [], 'no uncaught errors in the page')
})
