// app.close() with live connections: every client gets a Close, nothing is left behind.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { test } from 'tap'
import signalr from '../index.js'
import { buildClient } from './fixtures/client.js'
import { rawJsonConnection, RS } from './fixtures/raw-client.js'
import { scenarioHub } from './fixtures/scenario-hub.js'
import { exitAfter, NO_COVERAGE } from './fixtures/child.js'

async function listen () {
  const app = Fastify()
  await app.register(signalr)
  app.hub('/hubs/scenario', scenarioHub)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { app, base: `http://127.0.0.1:${port}` }
}

test('app.close() sends every connection a Close that allows reconnect, then closes it', async (t) => {
  const { app, base } = await listen()
  const raw = await rawJsonConnection(t, base, '/hubs/scenario')
  const client = buildClient(base + '/hubs/scenario')
  await client.start()
  const clientClosed = new Promise<Error | undefined>((resolve) => { client.onclose(resolve) })
  await app.close()
  t.equal(await raw.next(), `{"type":7,"allowReconnect":true}${RS}`)
  t.equal((await raw.closed).code, 1000)
  const err = await clientClosed
  t.equal(err, undefined, 'the official client sees a clean close')
  t.equal(app.signalr.connectionCount, 0)
})

test('after close nothing keeps the process alive: it exits on its own', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/exit-after-close.ts', import.meta.url)), 'WebSockets,ServerSentEvents,LongPolling'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...NO_COVERAGE }
  })
  // The child prints 'closed' once app.close() has resolved; from then on it has 10 s to exit
  const { code, signal, out, killed } = await exitAfter(child, 'closed', 10_000)
  t.equal(killed, undefined, `exited by itself: ${out}`)
  t.equal(signal, null, out)
  t.equal(code, 0, out)
  t.match(out, /closed/)
})

test('with forceCloseConnections, a held long poll still carries the Close at app.close()', async (t) => {
  const { request } = await import('./fixtures/wire.js')
  const app = Fastify({ forceCloseConnections: true })
  await app.register(signalr)
  app.hub('/hubs/scenario', scenarioHub)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const neg = await (await fetch(`${base}/hubs/scenario/negotiate?negotiateVersion=1`, { method: 'POST' })).json() as { connectionToken: string }
  const url = `${base}/hubs/scenario?id=${neg.connectionToken}`
  t.equal((await request(`${url}&_=1`)).status, 200, 'the first poll')
  const handshake = request(`${url}&_=2`)
  await request(url, { method: 'POST', body: `{"protocol":"json","version":1}${RS}` })
  t.equal((await handshake).body.toString(), `{}${RS}`)
  // A poll held by the server when it closes
  const held = request(`${url}&_=3`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await app.close()
  const res = await held
  t.equal(res.status, 200)
  t.equal(res.body.toString(), `{"type":7,"allowReconnect":true}${RS}`, 'the Close reached the client before the socket was destroyed')
})
