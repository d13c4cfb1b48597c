// The nginx example of docs/deployment.md, taken from the page itself, with Debian's nginx in
// front of the demo: the official client connects through it over WebSockets, Server-Sent
// Events and Long Polling and chats. nginx runs in the foreground as a child of the test,
// with its own prefix, configuration, pid file and temp folders in a temp directory, on a
// free loopback port. The only changes to the example: its two ports, and the paths a
// non-installed nginx needs.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildDemo } from '../demo/app.js'
import { endAtTeardown } from './fixtures/child.js'
import { connect, nextCall, VALID_MATRIX } from './fixtures/client.js'
import { freePort } from './fixtures/listen.js'
import { until } from './fixtures/until.js'

const NGINX = '/usr/sbin/nginx'
const doc = readFileSync(fileURLToPath(new URL('../docs/deployment.md', import.meta.url)), 'utf8')
const example = /^```nginx\n([\s\S]*?)^```$/m.exec(doc)?.[1] ?? ''

function seconds (directive: string): number {
  const m = new RegExp(`^\\s*${directive} (\\d+)s;`, 'm').exec(example)
  return m === null ? 0 : Number(m[1])
}

t.test('the example says what the app needs: upgrade headers, no buffering, long idle timeouts', async (t) => {
  t.match(example, /proxy_http_version 1\.1;/)
  t.match(example, /proxy_set_header Upgrade \$http_upgrade;/)
  t.match(example, /proxy_set_header Connection \$connection_upgrade;/)
  t.match(example, /proxy_buffering off;/)
  // The defaults: longPollTimeout 90 s, keepAliveInterval 15 s
  for (const directive of ['proxy_read_timeout', 'proxy_send_timeout']) {
    t.ok(seconds(directive) > 90, `${directive} (${seconds(directive)} s) is longer than longPollTimeout and keepAliveInterval`)
  }
})

if (!existsSync(NGINX)) {
  const reason = `${NGINX} is missing (.ci/run installs nginx-light)`
  console.log(`# skipping the nginx deployment test: ${reason}`)
  t.test('through nginx', { skip: reason }, async () => {})
} else {
  t.test('the demo behind the nginx example, every transport through the official client', async (t) => {
    const app = await buildDemo({ forceCloseConnections: true })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    const address = app.server.address()
    const appPort = typeof address === 'object' && address !== null ? address.port : 0

    const prefix = mkdtempSync(join(tmpdir(), 'signalr-nginx-'))
    t.teardown(() => { rmSync(prefix, { recursive: true, force: true }) })
    for (const d of ['logs', 'temp/client', 'temp/proxy', 'temp/fastcgi', 'temp/uwsgi', 'temp/scgi']) mkdirSync(join(prefix, d), { recursive: true })
    const port = await freePort()
    const site = example
      .replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`)
      .replace('server 127.0.0.1:3000;', `server 127.0.0.1:${appPort};`)
    t.not(site, example, 'the ports were put in')
    // As root the master would hand its workers to `nobody`, who cannot enter the temp folders
    const user = process.getuid?.() === 0 ? 'user root root;\n' : ''
    writeFileSync(join(prefix, 'nginx.conf'), `${user}worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log ${prefix}/logs/access.log;
  client_body_temp_path ${prefix}/temp/client;
  proxy_temp_path ${prefix}/temp/proxy;
  fastcgi_temp_path ${prefix}/temp/fastcgi;
  uwsgi_temp_path ${prefix}/temp/uwsgi;
  scgi_temp_path ${prefix}/temp/scgi;
${site}
}
`)
    const nginx = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'logs/error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    nginx.stdout.on('data', (d: Buffer) => { out += d.toString() })
    nginx.stderr.on('data', (d: Buffer) => { out += d.toString() })
    // SIGQUIT: nginx's graceful stop
    endAtTeardown(t, nginx, 'SIGQUIT')
    const base = `http://127.0.0.1:${port}`
    await until(async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${out}${readFileSync(join(prefix, 'logs/error.log'), 'utf8')}`)
      return await fetch(`${base}/favicon.svg`).then((r) => r.ok, () => false)
    }, 15_000)
    t.equal((await fetch(`${base}/`)).status, 200, 'the page comes through nginx')

    for (const [transport, protocol] of VALID_MATRIX) {
      const name = `${transport}/${protocol}`
      const ann = await connect(t, `${base}/hubs/chat?name=Ann`, { transport, protocol })
      const bo = await connect(t, `${base}/hubs/chat?name=Bo`, { transport, protocol })
      const room = `room ${transport} ${protocol}`
      await ann.invoke('Join', room)
      t.same(await bo.invoke('Join', room), { room, online: [{ name: 'Ann', connections: 1 }, { name: 'Bo', connections: 1 }] }, `${name}: both in the room`)
      const got = nextCall(bo, 'Message')
      const started = Date.now()
      await ann.invoke('Send', `hello over ${name}`)
      t.same(await got, [room, 'Ann', `hello over ${name}`], `${name}: a message through nginx`)
      // Buffered by the proxy, it would wait for the buffer to fill or the response to end
      t.ok(Date.now() - started < 2000, `${name}: it arrived at once (${Date.now() - started} ms)`)
      await ann.stop()
      await bo.stop()
    }
    const log = readFileSync(join(prefix, 'logs/access.log'), 'utf8')
    t.match(log, /"GET \/hubs\/chat\?[^"]*" 101 /, 'nginx passed WebSocket upgrades (101)')
    t.notMatch(log, /" 50[234] /, 'and no request ended in a proxy error')
  })
}
