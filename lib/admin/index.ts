// fastify-signalr/admin: the live admin view, a Fastify plugin of its own. It serves one page,
// its script and style, and the official browser client from the installed
// @microsoft/signalr, and maps the hub the page gets its live updates from. The application's
// hooks guard all of them, as any route. It reads only app.signalr's public view.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { AdminClientMissingError, AdminWithoutPluginError } from '../errors.js'
import { normalizePath } from '../registry.js'
import { adminHub } from './admin-hub.js'
import { AdminMonitor } from './monitor.js'
import { resolveAdminOptions, type SignalRAdminOptions } from './options.js'

export type { SignalRAdminOptions } from './options.js'
export type { AdminSnapshot, AdminHubView } from './monitor.js'

const require = createRequire(import.meta.url)
const asset = (file: string): URL => new URL(`./assets/${file}`, import.meta.url)

/** Where the official browser bundle is: an optional peer dependency, so it may be absent. */
export function browserClientFile (resolve: (id: string) => string = require.resolve): string {
  try {
    return resolve('@microsoft/signalr/dist/browser/signalr.min.js')
  } catch (err) {
    throw new AdminClientMissingError(String((err as Error).message).split('\n')[0])
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c])

// The page runs only its own script and the client bundle, and talks only to its own origin
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

const plugin: FastifyPluginAsync<SignalRAdminOptions> = async function signalrAdmin (fastify, rawOptions) {
  if (!fastify.hasDecorator('signalr') || !fastify.hasDecorator('hub')) throw new AdminWithoutPluginError()
  const options = resolveAdminOptions(rawOptions)
  const clientFile = browserClientFile()
  const base = normalizePath((fastify.prefix === '/' ? '' : fastify.prefix) + options.path)
  const [html, script, style, client] = await Promise.all([
    readFile(asset('index.html'), 'utf8'), readFile(asset('admin.js')), readFile(asset('admin.css')), readFile(clientFile)
  ])
  const page = html.replaceAll('{{title}}', escapeHtml(options.title)).replaceAll('{{base}}', escapeHtml(base))
  const { hooks } = options
  if (Object.keys(hooks).length === 0) {
    fastify.log.warn({ path: base }, 'signalr admin: no hook guards the admin view; anyone who reaches it can disconnect clients')
  }

  const serve = (url: string, type: string, body: string | Buffer): void => {
    fastify.get(url, { ...hooks }, async (_request, reply: FastifyReply) => await reply.headers(PAGE_HEADERS).type(type).send(body))
  }
  serve(options.path, 'text/html; charset=utf-8', page)
  serve(`${options.path}/admin.js`, 'text/javascript; charset=utf-8', script)
  serve(`${options.path}/admin.css`, 'text/css; charset=utf-8', style)
  serve(`${options.path}/signalr.min.js`, 'text/javascript; charset=utf-8', client)

  const hubPath = `${base}/hub`
  const monitor = new AdminMonitor(fastify.signalr, hubPath, options, fastify.log)
  fastify.hub(`${options.path}/hub`, adminHub(fastify.signalr, hubPath, monitor), { ...hooks })
  fastify.addHook('onClose', async () => { monitor.stop() })
}

export const signalrAdmin = plugin
export default signalrAdmin
