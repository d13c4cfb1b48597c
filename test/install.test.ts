// Installing the package as a user does: a tarball packed from a clean copy of the sources
// (no dist/, so `prepare` must build it, as it does for `npm install git+…`), installed into
// a new app, then imported with `import`, with `require` and from TypeScript.
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const exec = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

t.setTimeout(5 * 60_000)

/** The files a clone would have: tracked ones and new ones that are not ignored. */
async function sourceFiles (): Promise<string[]> {
  const { stdout } = await exec('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, maxBuffer: 16 << 20 })
  return stdout.split('\0').filter((f) => f !== '' && existsSync(join(root, f)))
}

const work = mkdtempSync(join(tmpdir(), 'signalr-install-'))
t.teardown(() => { rmSync(work, { recursive: true, force: true }) })

t.test('npm pack builds dist/ through prepare, and ships no map without its source', async (t) => {
  const copy = join(work, 'source')
  for (const file of await sourceFiles()) {
    mkdirSync(dirname(join(copy, file)), { recursive: true })
    cpSync(join(root, file), join(copy, file))
  }
  // The dev dependencies prepare needs (tsc), as `npm install` in a clone would provide them
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir')
  t.notOk(existsSync(join(copy, 'dist')), 'the copy starts without dist/')

  const { stdout } = await exec(npm, ['pack', '--json', '--pack-destination', work], { cwd: copy, maxBuffer: 16 << 20 })
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed.files.map((f) => f.path)
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'prepare built dist/ into the tarball')
  for (const name of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json']) t.ok(files.includes(name), `ships ${name}`)
  t.match(readFileSync(join(copy, 'LICENSE'), 'utf8'), /^MIT License/, 'LICENSE is the MIT text package.json names')
  const maps = files.filter((f) => f.endsWith('.map'))
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(join(copy, map), 'utf8')) as { sources: string[] }
    for (const s of sources) t.ok(files.includes(join(dirname(map), s)), `${map} points to ${s}, which is shipped`)
  }
  t.same(files.filter((f) => !f.startsWith('dist/') && !['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json'].includes(f)), [], 'nothing but dist/ and the docs')
  for (const asset of ['index.html', 'admin.js', 'admin.css']) t.ok(files.includes(`dist/lib/admin/assets/${asset}`), `the build copies the admin view's ${asset}`)
  t.same(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.startsWith('dist/demo/')), [], 'no tests, benchmarks or demo in dist/')
})

t.test('the tarball installs into a new app: import, require() and TypeScript', async (t) => {
  const tarball = join(work, readdirTarball())
  const app = join(work, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'newcomer-app', version: '1.0.0', private: true, type: 'module' }))
  // --prefer-offline: the dependencies come from the npm cache that installing this repo filled
  await exec(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, 'fastify'], { cwd: app, maxBuffer: 16 << 20 })

  const check = `
    const app = Fastify()
    await app.register(signalr)
    app.hub('/hubs/chat', defineHub({ methods: { Echo: { args: [], handler: () => 'hi' } } }))
    const res = await app.inject({ method: 'POST', url: '/hubs/chat/negotiate?negotiateVersion=1' })
    console.log(JSON.stringify({ status: res.statusCode, transports: res.json().availableTransports.length, plugin: typeof signalr }))
    await app.close()
  `
  writeFileSync(join(app, 'esm.js'), `import Fastify from 'fastify'\nimport signalr, { defineHub } from 'fastify-signalr'\n${check}`)
  // require(esm): Node 20.19+ loads the ES module and returns its namespace; register() takes its default
  writeFileSync(join(app, 'cjs.cjs'), `const Fastify = require('fastify')\nconst signalr = require('fastify-signalr')\nconst { defineHub } = signalr\n;(async () => {${check}})()`)
  const expected = { status: 200, transports: 3 }
  const esm = JSON.parse((await exec(process.execPath, ['esm.js'], { cwd: app })).stdout) as Record<string, unknown>
  t.same(esm, { ...expected, plugin: 'function' }, 'import works')
  const cjs = JSON.parse((await exec(process.execPath, ['cjs.cjs'], { cwd: app })).stdout) as Record<string, unknown>
  t.same(cjs, { ...expected, plugin: 'object' }, 'require() works and its namespace registers')
  const { stdout } = await exec(process.execPath, ['-e', 'console.log(Object.keys(require("fastify-signalr")).sort().join(","))'], { cwd: app })
  t.match(stdout, /defineHub/, 'require() gives the named exports')
  t.match(stdout, /fastifySignalR/)

  // The admin view: its optional peer, the official client, is not installed yet. Before the
  // @types link below: npm would prune what that link points to
  writeFileSync(join(app, 'admin.js'), `import Fastify from 'fastify'
import signalr from 'fastify-signalr'
import { signalrAdmin } from 'fastify-signalr/admin'
const app = Fastify()
await app.register(signalr)
try {
  await app.register(signalrAdmin, { onRequest: async () => {} })
  await app.ready()
  const page = await app.inject('/signalr-admin')
  const client = await app.inject('/signalr-admin/signalr.min.js')
  console.log(JSON.stringify({ page: page.statusCode, client: client.statusCode, hubs: app.signalr.paths }))
} catch (err) {
  console.log(JSON.stringify({ code: err.code }))
}
await app.close()
`)
  const runAdmin = async (): Promise<unknown> => JSON.parse((await exec(process.execPath, ['admin.js'], { cwd: app })).stdout)
  t.same(await runAdmin(), { code: 'FST_SIGNALR_ADMIN_CLIENT_MISSING' }, 'without @microsoft/signalr the admin view says what to install')
  await exec(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '@microsoft/signalr'], { cwd: app, maxBuffer: 16 << 20 })
  t.same(await runAdmin(), { page: 200, client: 200, hubs: ['/signalr-admin/hub'] }, 'with it, fastify-signalr/admin serves its page, assets and hub from dist/')

  writeFileSync(join(app, 'app.ts'), `import Fastify from 'fastify'
import Type from 'typebox'
import signalr, { defineHub } from 'fastify-signalr'
const hub = defineHub({ methods: { Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text.toUpperCase() } } })
const app = Fastify()
await app.register(signalr, { keepAliveInterval: 10_000 })
app.hub('/hubs/echo', hub)
const count: number = app.signalr.connectionCount
export { count }
`)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: true, types: ['node'] },
    files: ['app.ts']
  }))
  // What a TypeScript app has installed anyway
  symlinkSync(join(root, 'node_modules/@types'), join(app, 'node_modules/@types'), 'dir')
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  const r = await exec(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }).catch((err: { stdout: string }) => err)
  t.equal((r as { stdout: string }).stdout.trim(), '', 'a TypeScript app type-checks against the installed types')
})

function readdirTarball (): string {
  const found = readdirSync(work).find((f) => f.endsWith('.tgz'))
  if (found === undefined) throw new Error('no tarball was packed')
  return found
}
