// `npm run demo`: a chat hub and a page that uses the official browser client.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import signalr from '../index.js'
import { chatHub } from './chat-hub.js'

const require = createRequire(import.meta.url)
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(signalr)
app.hub('/hubs/chat', chatHub)

const assets: Record<string, [string, string]> = {
  '/': [new URL('./index.html', import.meta.url).pathname, 'text/html; charset=utf-8'],
  '/signalr.js': [require.resolve('@microsoft/signalr/dist/browser/signalr.js'), 'text/javascript; charset=utf-8'],
  '/signalr-protocol-msgpack.js': [require.resolve('@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.js'), 'text/javascript; charset=utf-8']
}
for (const [url, [file, type]] of Object.entries(assets)) {
  app.get(url, async (_request, reply) => await reply.type(type).send(await readFile(file)))
}

await app.listen({ port, host })
process.stdout.write(`\nfastify-signalr demo: open http://${host}:${port}/ in a browser (two tabs to chat)\n\n`)
