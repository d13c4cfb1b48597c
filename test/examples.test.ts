// The README's feature examples (examples/*.ts), run end to end with the official client.
import { test } from 'tap'
import { buildApp } from '../examples/features.js'
import { runClient } from '../examples/client.js'

test('the README examples work as written: streams both ways, a client result, JWT auth', async (t) => {
  const app = await buildApp('example-secret')
  app.log.level = 'warn'
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const token = app.jwt.sign({ sub: 'reader' })
  const result = await runClient(`http://127.0.0.1:${port}/hubs/features`, token)
  t.same(result, { items: [0, 1, 2, 3, 4], sum: 6, confirmed: true })
})
