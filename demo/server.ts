// `npm run demo`: a chat hub and a page that uses the official browser client, typed by the
// hub's schemas (demo/client.ts, bundled here with esbuild).
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import Fastify from 'fastify'
import signalr from '../index.js'
import { chatHub } from './chat-hub.js'

const require = createRequire(import.meta.url)
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(signalr)
app.hub('/hubs/chat', chatHub, { asyncapi: { title: 'fastify-signalr demo chat', version: '1.0.0' } })

// The page's script as an application bundles it: the official client stays a <script> of its own
const bundle = await build({
  entryPoints: [fileURLToPath(new URL('./client.ts', import.meta.url))],
  bundle: true, write: false, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'warning'
})
const clientJs = bundle.outputFiles[0].text
app.get('/client.js', async (_request, reply) => await reply.type('text/javascript; charset=utf-8').send(clientJs))

const assets: Record<string, [string, string]> = {
  '/': [new URL('./index.html', import.meta.url).pathname, 'text/html; charset=utf-8'],
  '/signalr.js': [require.resolve('@microsoft/signalr/dist/browser/signalr.js'), 'text/javascript; charset=utf-8'],
  '/signalr-protocol-msgpack.js': [require.resolve('@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.js'), 'text/javascript; charset=utf-8']
}
for (const [url, [file, type]] of Object.entries(assets)) {
  app.get(url, async (_request, reply) => await reply.type(type).send(await readFile(file)))
}

await app.listen({ port, host })
// The port listened on (PORT=0 picks a free one)
const listening = (app.server.address() as AddressInfo).port
process.stdout.write(`\nfastify-signalr demo: open http://${host}:${listening}/ in a browser (two tabs to chat)\n` +
  `the hub's AsyncAPI document: http://${host}:${listening}/hubs/chat/asyncapi.json\n\n`)
