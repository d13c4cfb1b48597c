// Every example in README.md, taken from the README itself so that it cannot drift: each
// TypeScript block is written to a file named by its first line (`// server.ts`), the files
// are type-checked as an application's would be (strict, against the built package), and each
// program is run the way its first line says, with the official client on the other end.
// The only change made to the text is the port: 3000 becomes a free one.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import WebSocket from 'ws'
import { endAtTeardown, NO_COVERAGE } from './fixtures/child.js'
import { connect, nextCall, record } from './fixtures/client.js'
import { openConnection } from './fixtures/http-connection.js'

import { redisMissing, startRedis } from './fixtures/redis.js'
import { freePort } from './fixtures/listen.js'
import { until } from './fixtures/until.js'

const exec = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')

t.setTimeout(4 * 60_000)

interface Block { lang: string, code: string, file: string | undefined }
const blocks: Block[] = [...readme.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({
  lang: m[1],
  code: m[2],
  file: /^\/\/ ([\w-]+\.ts)\b/.exec(m[2])?.[1]
}))
const ts = blocks.filter((b) => b.lang === 'ts')
const files = new Map(ts.filter((b) => b.file !== undefined).map((b) => [b.file as string, b.code]))
/** Longer examples the README excerpts and links to (examples/*.ts), run by their own tests. */
const exampleFiles = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(root, 'examples', f), 'utf8'))
/** TypeScript blocks without a file name: excerpts, each of which must appear in a named file or in examples/. */
const excerpts = ts.filter((b) => b.file === undefined)

/** What the test does with each named file; a new example without a plan fails the test. */
const PLANS = ['chat.ts', 'server.ts', 'client.ts', 'transports.ts', 'features.ts', 'auth.ts', 'features-client.ts', 'origins.ts', 'cors.ts', 'scale-out.ts', 'raw.ts']

const port = await freePort()
const base = `http://localhost:${port}`
// Under test/ (which the coverage report leaves out), inside the package, so that
// 'fastify-signalr' resolves to the built package as it does in an application
const dir = mkdtempSync(join(root, 'test', '.readme-examples-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
for (const [file, code] of files) writeFileSync(join(dir, file), code.replaceAll('3000', String(port)))

interface Run { child: ChildProcess, out: () => string }

/** Starts an example as its first line says (`node --import tsx file`), stopped at teardown. */
function start (tt: { teardown (fn: () => unknown): void }, file: string, env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: dir, env: { ...process.env, ...NO_COVERAGE, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  endAtTeardown(tt, child)
  return { child, out: () => out }
}

async function listening (run: Run): Promise<void> {
  await until(async () => {
    if (run.child.exitCode !== null) throw new Error(`the example exited: ${run.out()}`)
    return await fetch(`${base}/`).then(() => true, () => false)
  }, 30_000)
}

/** Runs a client example to its end; its output is what a user would see. */
async function runToEnd (file: string, env: Record<string, string> = {}): Promise<{ code: number | null, out: string }> {
  const r = await exec(process.execPath, ['--import', 'tsx', file], { cwd: dir, env: { ...process.env, ...NO_COVERAGE, ...env }, timeout: 60_000 })
    .then((x) => ({ code: 0, out: x.stdout + x.stderr }), (err: { code: number | null, stdout: string, stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }))
  return r
}

t.test('every TypeScript block is a named file with a plan, or an excerpt of one', async (t) => {
  t.same([...files.keys()].sort(), [...PLANS].sort(), 'the named examples')
  for (const excerpt of excerpts) {
    // An excerpt may end with a comment line of its own (how the client side answers)
    const body = excerpt.code.split('\n').filter((line) => !line.startsWith('// client:')).join('\n').trim()
    const indented = (code: string): string => code.split('\n').map((l) => l.trim()).join('\n')
    t.ok([...files.values(), ...exampleFiles].some((code) => indented(code).includes(indented(body))), `excerpt found in a named example: ${body.split('\n')[0]}`)
  }
})

t.test('the examples type-check as an application written with them would (strict)', async (t) => {
  t.ok(existsSync(join(root, 'dist/index.d.ts')), 'the package is built (npm test builds it)')
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: true, types: ['node'] },
    include: ['*.ts']
  }))
  const r = await exec(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir })
    .then(() => '', (err: { stdout: string }) => err.stdout)
  t.equal(r, '', 'tsc finds nothing')
})

t.test('quick start: server.ts and client.ts, then the curl line reaches a client through /notify', async (t) => {
  const server = start(t, 'server.ts')
  await listening(server)
  const watcher = await connect(t, `${base}/hubs/chat`)
  // Every call, however long the examples take to start on a busy machine
  const received = record(watcher, 'ReceiveMessage')
  const receives = async (...args: string[]): Promise<boolean> => {
    await until(() => received.some((call) => JSON.stringify(call) === JSON.stringify(args)), 30_000).catch(() => {})
    return received.some((call) => JSON.stringify(call) === JSON.stringify(args))
  }
  const client = await runToEnd('client.ts')
  t.equal(client.code, 0, 'client.ts runs to its end')
  const lines = client.out.split('\n')
  t.ok(lines.includes('ann: hello'), 'it prints "ann: hello"')
  t.ok(lines.includes('hi'), 'it prints "hi"')
  t.ok(lines.includes("Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked. Argument 0 is invalid: must be string."), 'and the validation error, caught')
  t.ok(await receives('ann', 'hello'), 'another connection got the broadcast')

  const curl = blocks.find((b) => b.lang === 'sh' && b.code.includes('/notify'))
  t.ok(curl, 'the README has the curl line')
  const line = (curl?.code ?? '').split('\n')[0].replaceAll('3000', String(port))
  const { stdout } = await exec('bash', ['-c', line])
  t.equal(stdout.trim(), '{"sent":true}', 'curl gets {"sent":true}')
  t.ok(await receives('server', 'hello from curl'), 'the text arrives as a string, not "[object Object]"')
  for (const body of ['{}', '{"text":{"a":1}}', '{"text":""}']) {
    const bad = await fetch(`${base}/notify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    t.equal(bad.status, 400, `${body} gets 400`)
  }
  t.notOk(server.out().includes('"level":50'), 'the server logged no error')
})

t.test('transports.ts: negotiate answers as the README says', async (t) => {
  const server = start(t, 'transports.ts')
  await listening(server)
  const said = /Negotiate then answers `\/hubs\/echo` with\s+`([^`]+)`\s+and `\/hubs\/binary` with `([^`]+)`/.exec(readme)
  t.ok(said, 'the README states both answers')
  for (const [path, expected] of [['/hubs/echo', said?.[1]], ['/hubs/binary', said?.[2]]] as const) {
    const body = await (await fetch(`${base}${path}/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { availableTransports: unknown }
    t.same(body.availableTransports, JSON.parse(expected ?? 'null'), path)
  }
})

function jwt (secret: string, payload: Record<string, unknown>): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...payload, iat: Math.floor(Date.now() / 1000) })}`
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`
}

t.test('auth.ts says what is missing without JWT_SECRET, and with it serves features-client.ts', async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...NO_COVERAGE }
  delete env.JWT_SECRET
  const missing = await exec(process.execPath, ['--import', 'tsx', 'auth.ts'], { cwd: dir, env, timeout: 30_000 })
    .then(() => ({ code: 0, out: '' }), (err: { code: number, stderr: string }) => ({ code: err.code, out: err.stderr }))
  t.not(missing.code, 0, 'without JWT_SECRET it stops')
  t.match(missing.out, /Set JWT_SECRET, e\.g\. JWT_SECRET=\$\(openssl rand -hex 32\)/, 'and says what to do')

  const secret = 'a-secret-for-the-readme-test'
  const server = start(t, 'auth.ts', { JWT_SECRET: secret })
  await listening(server)
  await until(() => server.out().includes('a token for features-client.ts'), 10_000)
  const logged = server.out().split('\n').find((l) => l.includes('a token for features-client.ts')) ?? '{}'
  const token = (JSON.parse(logged) as { token: string }).token
  const client = await runToEnd('features-client.ts', { TOKEN: token })
  t.equal(client.code, 0, `features-client.ts runs to its end${client.code === 0 ? '' : `: ${client.out}`}`)
  t.same(client.out.trim().split('\n'), [
    'item 0', 'item 1', 'item 2', 'item 3', 'item 4', 'sum 6', 'confirmed true',
    "Failed to invoke 'Shutdown' because user is unauthorized"
  ], 'a stream, an upload, a client result and a refused method')
  const refused = await runToEnd('features-client.ts', { TOKEN: jwt('another-secret', { sub: 'mallory' }) })
  t.not(refused.code, 0, 'a token signed with another secret is refused')
  t.match(refused.out, /Status code '401'/, 'at negotiate, with 401')
})

t.test('raw.ts: /echo echoes; /shout wants its token, greets the user and shouts back until bye', async (t) => {
  const server = start(t, 'raw.ts')
  await listening(server)
  const echo = await openConnection(t, `${base}/echo`, { transport: 'WebSockets' })
  await echo.connection.send('hi')
  await until(() => echo.received.length === 1)
  t.equal(echo.received[0], 'hi', '/echo answers with what it got')
  await t.rejects(openConnection(t, `${base}/shout`, { transport: 'LongPolling' }), 'without the token, negotiate is refused')
  const shout = await openConnection(t, `${base}/shout`, { transport: 'LongPolling', accessToken: 'let-me-in', headers: { 'x-user': 'ada' } })
  await until(() => shout.received.length === 1)
  t.equal(shout.received[0], 'hello ada', 'the greeting names the user')
  await shout.connection.send('abc')
  await until(() => shout.received.length === 2)
  t.equal(shout.received[1], 'ABC')
  await shout.connection.send('bye')
  t.equal(await shout.closed, undefined, 'bye ends the connection cleanly')
  t.notOk(server.out().includes('"level":50'), 'the server logged no error')
})

t.test('origins.ts refuses WebSocket upgrades from other origins', async (t) => {
  const server = start(t, 'origins.ts')
  await listening(server)
  async function upgrade (origin: string): Promise<number> {
    const ws = new WebSocket(`ws://localhost:${port}/hubs/chat`, { origin })
    return await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
      ws.once('open', () => { ws.close(); resolve(101) })
    })
  }
  t.equal(await upgrade('https://evil.example.com'), 403)
  t.equal(await upgrade('https://app.example.com'), 101)
})

t.test('cors.ts answers the preflight and puts the CORS headers on the Server-Sent Events stream', async (t) => {
  const server = start(t, 'cors.ts')
  await listening(server)
  const origin = 'https://app.example.com'
  const preflight = await fetch(`${base}/hubs/chat/negotiate?negotiateVersion=1`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with,x-signalr-user-agent' }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), origin)
  t.equal(preflight.headers.get('access-control-allow-credentials'), 'true')
  const neg = await (await fetch(`${base}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: { origin } })).json() as { connectionToken: string }
  const controller = new AbortController()
  const sse = await fetch(`${base}/hubs/chat?id=${neg.connectionToken}`, { headers: { origin, accept: 'text/event-stream' }, signal: controller.signal })
  t.equal(sse.headers.get('content-type'), 'text/event-stream')
  t.equal(sse.headers.get('access-control-allow-origin'), origin, 'the stream carries Access-Control-Allow-Origin')
  t.equal(sse.headers.get('access-control-allow-credentials'), 'true')
  controller.abort()
  const other = await fetch(`${base}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } })
  t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin gets no Access-Control-Allow-Origin')
})

const noRedis = redisMissing()
t.test('scale-out.ts: two processes on one Redis, a send on one reaches a client of the other', { skip: noRedis }, async (t) => {
  const redis = await startRedis(t)
  // The example's Redis URL, pointed at the test's own redis-server
  writeFileSync(join(dir, 'scale-out.ts'), (files.get('scale-out.ts') ?? '').replace('redis://127.0.0.1:6379', redis.url))
  const ports = [await freePort(), await freePort()]
  const servers = ports.map((p) => start(t, 'scale-out.ts', { PORT: String(p) }))
  for (const [i, server] of servers.entries()) {
    await until(async () => {
      if (server.child.exitCode !== null) throw new Error(`scale-out.ts exited: ${server.out()}`)
      return await fetch(`http://localhost:${ports[i]}/`).then(() => true, () => false)
    }, 30_000)
  }
  const a = await connect(t, `http://localhost:${ports[0]}/hubs/chat`)
  const b = await connect(t, `http://localhost:${ports[1]}/hubs/chat`)
  const got = nextCall(b, 'Message', 15_000)
  await a.invoke('Send')
  t.match(await got, [/^hello from \d+$/], 'the client of the other process got the message')
})
