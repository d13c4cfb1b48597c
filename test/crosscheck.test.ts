// The same scenario against the ASP.NET Core reference server (bench/aspnetcore, started as
// a child process) and against fastify-signalr, with the official JavaScript client
// (test/interop/js-probes.ts: results, error texts, stream and upload endings, client
// results, the order of a burst, what onclose receives; plus plain HTTP requests to the
// hub's endpoints) and with the official .NET client (test/interop/dotnet: its JSON lines).
// The answers are compared field by field. An intended difference is listed below in
// ALLOWED with its reason, and both sides of it are pinned, so an entry that no longer
// applies fails too; a known bug not fixed yet is listed in OPEN and shows as a todo.
// Anything else that differs fails. Skipped where there is no dotnet SDK.
import t, { type Test } from 'tap'
import {
  buildProject, CLIENT_PROJECT, COMBOS, dotnetMissing, runInteropClient, SERVER_PROJECT, startReferenceServer,
  type ClientRun
} from './fixtures/dotnet.js'
import type { ProtocolName, TransportName } from './fixtures/client.js'
import { startServer } from './fixtures/server.js'
import { runHttpProbes, runJsProbes, type Observations } from './interop/js-probes.js'

interface Allowed { reference: unknown, ours: unknown, reason: string }
type AllowList = Record<string, Allowed>
/** Known bugs, reported and not fixed yet: their comparison runs as a tap todo. */
type OpenList = Record<string, string>

const FAILED = (m: string): string => `Failed to invoke '${m}' due to an error on the server.`
const UNEXPECTED = (m: string): string => `An unexpected error occurred invoking '${m}' on the server.`
const BINDING = 'InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.'

const WHY_VALIDATION = 'arguments are validated by the method\'s TypeBox schemas, and the error says which argument failed and why (ASP.NET Core only says that binding failed); on purpose'
const WHY_COUNT = 'a wrong argument count always carries its InvalidDataException detail, which ASP.NET Core shows only with EnableDetailedErrors; on purpose: it is no secret and helps the caller'
const WHY_NULL = 'Type.String() does not accept null, while a .NET `string` parameter binds null (nullable annotations are not enforced by SignalR\'s binder); a hub that takes null says so in its schema: Type.Union([Type.String(), Type.Null()])'
const WHY_UPLOAD_ITEM = 'upload items are validated by the method\'s `uploads` schemas and the error says which item failed and why, like argument validation; ASP.NET Core says "Failed to bind Stream message."'

/** fastify-signalr with its defaults against ASP.NET Core with its defaults. */
const ALLOWED_JS: AllowList = {
  'invoke Echo(42)': {
    reference: { error: FAILED('Echo') },
    ours: { error: `${FAILED('Echo')} ${BINDING} Argument 0 is invalid: must be string.` },
    reason: WHY_VALIDATION
  },
  'invoke Add(2, 3.5)': {
    reference: { error: FAILED('Add') },
    ours: { error: `${FAILED('Add')} ${BINDING} Argument 1 is invalid: must be integer.` },
    reason: WHY_VALIDATION
  },
  'stream Counter("x", 1) (bad argument)': {
    reference: { items: [], end: `error: ${FAILED('Counter')}` },
    ours: { items: [], end: `error: ${FAILED('Counter')} ${BINDING} Argument 0 is invalid: must be integer.` },
    reason: WHY_VALIDATION
  },
  'invoke Echo(null)': {
    reference: { result: null },
    ours: { error: `${FAILED('Echo')} ${BINDING} Argument 0 is invalid: must be string.` },
    reason: WHY_NULL
  },
  'invoke Echo() (too few arguments)': {
    reference: { error: FAILED('Echo') },
    ours: { error: `${FAILED('Echo')} InvalidDataException: Invocation provides 0 argument(s) but target expects 1.` },
    reason: WHY_COUNT
  },
  'invoke Echo("a", "b") (too many arguments)': {
    reference: { error: FAILED('Echo') },
    ours: { error: `${FAILED('Echo')} InvalidDataException: Invocation provides 2 argument(s) but target expects 1.` },
    reason: WHY_COUNT
  },
  'invoke Sum(s1, s2) (one stream too many)': {
    reference: { error: FAILED('Sum') },
    ours: { error: `${FAILED('Sum')} InvalidDataException: Invocation provides 1 argument(s) but target expects 0.` },
    reason: `${WHY_COUNT} (ASP.NET Core counts the extra stream as an argument; so do we, with the same text)`
  },
  'upload Sum([1, "x"]) (an item of the wrong type)': {
    reference: { error: `${UNEXPECTED('Sum')} HubException: Failed to bind Stream message.` },
    ours: { error: `${UNEXPECTED('Sum')} HubException: Invalid item for upload stream 0 of 'Sum': must be number.` },
    reason: WHY_UPLOAD_ITEM
  }
}

const WHY_DETAIL_NAME = 'with detailed errors the detail names the JavaScript error (its `name`, or the FST_SIGNALR_ code of the plugin\'s own errors), not a .NET exception type'

/** Both servers with detailed errors on (enableDetailedErrors / EnableDetailedErrors). */
const ALLOWED_JS_DETAILED: AllowList = {
  'invoke Echo(42)': {
    reference: { error: `${FAILED('Echo')} ${BINDING}` },
    ours: { error: `${FAILED('Echo')} ${BINDING} Argument 0 is invalid: must be string.` },
    reason: WHY_VALIDATION
  },
  'invoke Add(2, 3.5)': {
    reference: { error: `${FAILED('Add')} ${BINDING}` },
    ours: { error: `${FAILED('Add')} ${BINDING} Argument 1 is invalid: must be integer.` },
    reason: WHY_VALIDATION
  },
  'stream Counter("x", 1) (bad argument)': {
    reference: { items: [], end: `error: ${FAILED('Counter')} ${BINDING}` },
    ours: { items: [], end: `error: ${FAILED('Counter')} ${BINDING} Argument 0 is invalid: must be integer.` },
    reason: WHY_VALIDATION
  },
  'invoke Echo(null)': ALLOWED_JS['invoke Echo(null)'],
  'invoke Fail()': {
    reference: { error: `${UNEXPECTED('Fail')} InvalidOperationException: secret detail` },
    ours: { error: `${UNEXPECTED('Fail')} Error: secret detail` },
    reason: WHY_DETAIL_NAME
  },
  'upload Sum([1, "x"]) (an item of the wrong type)': {
    // The JSON and MessagePack deserializers word their detail differently: pinned per protocol below
    reference: undefined,
    ours: { error: `${UNEXPECTED('Sum')} HubException: Invalid item for upload stream 0 of 'Sum': must be number.` },
    reason: WHY_UPLOAD_ITEM
  },
  'invoke Echo(40 000 characters) (over the 32 KB limit)': {
    reference: { error: 'Server returned an error on close: Connection closed with an error. InvalidDataException: The maximum message size of 32768B was exceeded. The message size can be configured in AddHubOptions.' },
    ours: { error: 'Server returned an error on close: Connection closed with an error. FST_SIGNALR_MESSAGE_TOO_LARGE: The maximum message size of 32768B was exceeded.' },
    reason: `${WHY_DETAIL_NAME}; the .NET hint names a .NET API (AddHubOptions), ours is the maximumReceiveMessageSize option`
  },
  'over the 32 KB limit: what onclose receives': {
    reference: { result: 'Error: Server returned an error on close: Connection closed with an error. InvalidDataException: The maximum message size of 32768B was exceeded. The message size can be configured in AddHubOptions.' },
    ours: { result: 'Error: Server returned an error on close: Connection closed with an error. FST_SIGNALR_MESSAGE_TOO_LARGE: The maximum message size of 32768B was exceeded.' },
    reason: 'as above'
  }
}

const OPEN_JS: OpenList = {}

const WHY_CHARSET = 'the plugin names the charset (utf-8) in its Content-Type; the clients read the body as UTF-8 either way'
const WHY_405_BODY = 'the 405 answer says "Method Not Allowed" in its body; ASP.NET Core sends an empty one'
const HTTP_ALLOWED: AllowList = {}
for (const name of ['POST negotiate?negotiateVersion=1', 'POST negotiate (version 0)', 'POST negotiate?negotiateVersion=1&useStatefulReconnect=true']) {
  HTTP_ALLOWED[`${name}: content-type`] = { reference: 'application/json', ours: 'application/json; charset=utf-8', reason: WHY_CHARSET }
}
for (const name of ['GET negotiate', 'GET hub?id=unknown (a poll)', 'POST hub?id=unknown', 'DELETE hub?id=unknown', 'GET hub without id', 'PUT hub?id=unknown',
  'LP POST handshake', 'LP POST Echo invocation', 'LP DELETE', 'SSE POST handshake']) {
  HTTP_ALLOWED[`${name}: content-type`] = { reference: 'text/plain', ours: 'text/plain; charset=utf-8', reason: WHY_CHARSET }
}
for (const name of ['GET negotiate', 'PUT hub?id=unknown']) {
  HTTP_ALLOWED[`${name}: body`] = { reference: '', ours: 'Method Not Allowed', reason: WHY_405_BODY }
}

/** .NET client checks whose (normalised) detail may differ; `ok` must still match. */
const ALLOWED_DOTNET: AllowList = {
  'validation-error': {
    reference: `HubException: "${FAILED('Echo')}"`,
    ours: `HubException: "${FAILED('Echo')} ${BINDING} Argument 0 is invalid: must be string."`,
    reason: WHY_VALIDATION
  }
}

/** One assertion per field (two for an allowed difference: both sides are pinned). */
function compare (t: Test, where: string, reference: Observations, ours: Observations, allowed: AllowList, open: OpenList = {}): void {
  for (const key of new Set([...Object.keys(reference), ...Object.keys(ours)])) {
    const name = `${where} ${key}`
    const allow = allowed[key]
    if (allow !== undefined) {
      if (allow.reference !== undefined) t.same(reference[key], allow.reference, `${name}: ASP.NET Core answers as the allow-list records`)
      t.same(ours[key], allow.ours, `${name}: differs on purpose (${allow.reason})`)
    } else if (open[key] !== undefined) {
      // A fixed bug must leave OPEN, or the list stops telling the truth
      if (JSON.stringify(ours[key]) === JSON.stringify(reference[key])) t.fail(`${name}: now the same as ASP.NET Core: remove it from OPEN_JS`)
      else t.same(ours[key], reference[key], `${name}: same as ASP.NET Core`, { todo: open[key] })
    } else {
      t.same(ours[key], reference[key], `${name}: same as ASP.NET Core`)
    }
  }
}

const JS_COMBOS = COMBOS.filter(([transport, protocol]) => !(transport === 'ServerSentEvents' && protocol === 'messagepack')) as Array<[TransportName, ProtocolName]>

/** A .NET client run as comparable fields: per check, `ok` and the detail without what changes per run. */
function dotnetFields (run: ClientRun): Observations {
  const o: Observations = { exit: run.code, summary: run.summary }
  for (const c of run.checks) {
    o[c.check] = { ok: c.ok }
    o[`${c.check} detail`] = c.detail
      .replace(/ \(\d+ ms\)$/, '')                                   // timing
      .replace(/-[0-9a-f]{8}\b/g, '-RUN')                             // the run id in payloads, groups, users
      .replace(/connectionId=[A-Za-z0-9_-]+/, 'connectionId=ID')
      .replace(/http:\/\/127\.0\.0\.1:\d+/g, 'http://HOST')
      // How many items arrive before the cancel lands, and where it interrupts the
      // enumeration (TaskCanceledException or its base class), is timing
      .replace(/items before cancel \[0,1(,\d+)*\]/, 'items before cancel [0,1,...]')
      .replace(/enumeration threw (Task|Operation)CanceledException/, 'enumeration threw a cancellation')
  }
  return o
}

const DOTNET_ALLOWED_FIELDS: AllowList = Object.fromEntries(
  Object.entries(ALLOWED_DOTNET).map(([check, a]) => [`${check} detail`, a]))

const missing = dotnetMissing()
if (missing !== false) {
  console.log(`# skipping the cross-check with ASP.NET Core: ${missing}`)
  t.plan(0, missing)
} else {
  // The first build on a fresh machine restores both projects' packages from NuGet
  t.setTimeout(8 * 60_000)

  t.test('cross-check with the ASP.NET Core reference server', async (t) => {
    for (const project of [SERVER_PROJECT, CLIENT_PROJECT]) {
      const build = await buildProject(project)
      t.comment(`dotnet build ${project.split('/').pop() ?? project}: ${build.ms} ms`)
      if (!build.ok) {
        t.fail(`dotnet build of ${project} failed`, { output: build.output })
        return
      }
    }

    await t.test('official JavaScript client, defaults', async (t) => {
      const reference = await startReferenceServer(t)
      // The reference server allows stateful reconnects; so does ours here
      const ours = await startServer(t, { plugin: { allowStatefulReconnects: true } })
      for (const [transport, protocol] of JS_COMBOS) {
        const started = Date.now()
        const ref = await runJsProbes(reference.url, transport, protocol)
        const mid = Date.now()
        const got = await runJsProbes(ours.url, transport, protocol)
        t.comment(`${transport}/${protocol}: ASP.NET Core ${mid - started} ms, fastify-signalr ${Date.now() - mid} ms`)
        compare(t, `${transport}/${protocol}`, ref, got, ALLOWED_JS, OPEN_JS)
      }
      compare(t, 'HTTP', await runHttpProbes(reference.base), await runHttpProbes(ours.base), HTTP_ALLOWED)
    })

    await t.test('official JavaScript client, detailed errors on both servers', async (t) => {
      const reference = await startReferenceServer(t, { detailedErrors: true })
      const ours = await startServer(t, { plugin: { allowStatefulReconnects: true, enableDetailedErrors: true } })
      for (const [transport, protocol] of [['WebSockets', 'json'], ['LongPolling', 'messagepack']] as Array<[TransportName, ProtocolName]>) {
        const ref = await runJsProbes(reference.url, transport, protocol)
        const got = await runJsProbes(ours.url, transport, protocol)
        const bindingDetail = protocol === 'json'
          ? 'JsonException: The JSON value could not be converted to System.Double.'
          : 'InvalidDataException: Deserializing object of the `Double` type for \'item\' failed.'
        t.match(ref['upload Sum([1, "x"]) (an item of the wrong type)'], { error: `${UNEXPECTED('Sum')} HubException: Failed to bind Stream message. ${bindingDetail}` },
          `${transport}/${protocol} upload Sum([1, "x"]): ASP.NET Core answers with its deserializer's detail`)
        compare(t, `${transport}/${protocol} detailed`, ref, got, ALLOWED_JS_DETAILED, OPEN_JS)
      }
    })

    await t.test('official .NET client', async (t) => {
      const reference = await startReferenceServer(t)
      const ours = await startServer(t, { plugin: { allowStatefulReconnects: true } })
      for (const [transport, protocol] of COMBOS) {
        const ref = await runInteropClient(reference.url, transport, protocol)
        const got = await runInteropClient(ours.url, transport, protocol)
        t.comment(`${transport}/${protocol}: ASP.NET Core ${ref.ms} ms, fastify-signalr ${got.ms} ms`)
        compare(t, `.NET ${transport}/${protocol}`, dotnetFields(ref), dotnetFields(got), DOTNET_ALLOWED_FIELDS)
      }
    })
  })
}
