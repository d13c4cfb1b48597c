// The demo app: the chat hub, the page and its typed script, the official browser client's
// bundles, a favicon, and the SignalR metrics for Prometheus at GET /metrics.
// demo/server.ts runs it; test/demo-browser.test.ts drives it in Chromium.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { build } from 'esbuild'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import signalr from '../index.js'
import { signalrAdmin } from '../lib/admin/index.js'
import { chatHub } from './chat-hub.js'

const require = createRequire(import.meta.url)
const here = (file: string): string => new URL(file, import.meta.url).pathname

const bundle = (file: string): string => require.resolve(`@microsoft/${file}`)
const assets: Record<string, [string, string]> = {
  '/': [here('./index.html'), 'text/html; charset=utf-8'],
  '/favicon.svg': [here('./favicon.svg'), 'image/svg+xml'],
  // The official browser bundles, and their maps for the browser's developer tools
  '/signalr.min.js': [bundle('signalr/dist/browser/signalr.min.js'), 'text/javascript; charset=utf-8'],
  '/signalr.min.js.map': [bundle('signalr/dist/browser/signalr.min.js.map'), 'application/json'],
  '/signalr-protocol-msgpack.min.js': [bundle('signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js'), 'text/javascript; charset=utf-8'],
  '/signalr-protocol-msgpack.min.js.map': [bundle('signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js.map'), 'application/json']
}

/** A name from the query (`?name=`), trimmed; the page asks for one before it connects. */
function nameFrom (query: unknown): string | undefined {
  const name = (query as Record<string, unknown>).name
  if (typeof name !== 'string') return undefined
  const trimmed = name.trim()
  return trimmed.length > 0 && trimmed.length <= 32 ? trimmed : undefined
}

/** The page's script as an application bundles it; the official client stays a <script> of its own. */
async function pageScript (): Promise<string> {
  const bundle = await build({
    entryPoints: [here('./client.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'warning'
  })
  return bundle.outputFiles[0].text
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/**
 * The demo's guard of its admin view: this machine only, even when the chat listens on every
 * interface for a phone. A real app puts its own auth hook here (see the README).
 */
async function thisMachineOnly (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!LOOPBACK.has(request.ip)) await reply.code(403).send({ error: 'the admin view answers only on this machine' })
}

export async function buildDemo (options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(options)
  const script = await pageScript()
  app.get('/client.js', async (_request, reply) => await reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(script))
  // The README's Prometheus setup, with the provider handed to the plugin instead of made
  // global, so that each demo app (tests build several in one process) has its own
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const meterProvider = new MeterProvider({ readers: [exporter] })
  app.addHook('onClose', async () => { await meterProvider.shutdown() })
  app.get('/metrics', (request, reply) => {
    reply.hijack()
    exporter.getMetricsRequestHandler(request.raw, reply.raw)
  })
  await app.register(signalr, { allowStatefulReconnects: true, telemetry: { meterProvider } })
  // A demo trusts the name a page sends; a real app takes the user from its auth (see the README)
  app.hub('/hubs/chat', chatHub, {
    userId: (request) => nameFrom(request.query),
    // The hub's contract, generated from its schemas: GET /hubs/chat/asyncapi.json
    asyncapi: { title: 'fastify-signalr demo chat', version: '1.0.0' }
  })
  // The live admin view at /signalr-admin: who is connected, over what, in which room
  await app.register(signalrAdmin, { title: 'fastify-signalr demo · admin', onRequest: thisMachineOnly })
  for (const [url, [file, type]] of Object.entries(assets)) {
    const body = await readFile(file)
    app.get(url, async (_request, reply) => await reply.type(type).header('cache-control', 'no-cache').send(body))
  }
  // Browsers ask for /favicon.ico when a page names no icon: send them to the one there is
  app.get('/favicon.ico', async (_request, reply) => await reply.redirect('/favicon.svg', 301))
  return app
}
