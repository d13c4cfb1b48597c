// `npm run demo`: the chat on http://127.0.0.1:3000/ (PORT and HOST change it). SIGINT
// (Ctrl-C) and SIGTERM shut it down through app.close(), so every open page gets its Close
// message and reconnects once the demo is back.
import { buildDemo } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = await buildDemo({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.listen({ port, host })
process.stdout.write(`\nfastify-signalr demo: open http://${host}:${port}/ in two tabs (or on your phone) and chat\n` +
  `the admin view, from this machine only: http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/signalr-admin\n\n`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'demo: shutting down')
    // A second signal, or a close that hangs, ends the process anyway
    const timer = setTimeout(() => { process.exit(1) }, 10_000)
    timer.unref()
    app.close().then(() => { process.exit(0) }, (err: unknown) => {
      app.log.error({ err }, 'demo: close failed')
      process.exit(1)
    })
  })
}
