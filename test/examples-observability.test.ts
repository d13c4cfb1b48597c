// The README's observability examples: examples/prometheus.ts (the standard SignalR metrics,
// and ours, scraped from /metrics while the official client uses the hub) and examples/tracing.ts.
import { test } from 'tap'
import { buildMetricsApp } from '../examples/prometheus.js'
import { connect } from './fixtures/client.js'
import { until } from './fixtures/until.js'

test('GET /metrics serves the SignalR instruments in the Prometheus text format', async (t) => {
  const app = await buildMetricsApp()
  app.log.level = 'warn'
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const base = `http://127.0.0.1:${port}`
  const scrape = async (): Promise<string> => await (await fetch(`${base}/metrics`)).text()

  const client = await connect(t, `${base}/hubs/chat`, { transport: 'WebSockets' })
  t.equal(await client.invoke('Echo', 'hi'), 'hi')
  let text = await scrape()
  t.match(text, /^# TYPE signalr_server_active_connections gauge$/m)
  t.match(text, /^signalr_server_active_connections\{signalr_transport="web_sockets",otel_scope_name="fastify-signalr"\} 1$/m, 'one active WebSocket connection')
  t.match(text, /^signalr_server_invocations_total\{signalr_hub="\/hubs\/chat",signalr_method="Echo",signalr_invocation_outcome="ok",otel_scope_name="fastify-signalr"\} 1$/m)
  t.match(text, /^signalr_server_messages_received_total\{signalr_hub="\/hubs\/chat",signalr_protocol="json",otel_scope_name="fastify-signalr"\} \d+$/m)

  const lp = await connect(t, `${base}/hubs/chat`, { transport: 'LongPolling' })
  await lp.stop()
  await until(async () => /signalr_server_connection_duration_count\{signalr_connection_status="normal_closure",signalr_transport="long_polling",otel_scope_name="fastify-signalr"\} 1$/m.test(await scrape()))
  text = await scrape()
  t.match(text, /^# TYPE signalr_server_connection_duration histogram$/m)
  for (const le of ['0.01', '0.02', '0.05', '0.1', '0.2', '0.5', '1', '2', '5', '10', '30', '60', '120', '300', '+Inf']) {
    t.match(text, new RegExp(`^signalr_server_connection_duration_bucket\\{signalr_connection_status="normal_closure",signalr_transport="long_polling",otel_scope_name="fastify-signalr",le="${le.replace('+', '\\+')}"\\} [01]$`, 'm'), `bucket le=${le}`)
  }
})

test('examples/tracing.ts: a span per hub method call', async (t) => {
  const { InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base')
  const { buildTracedApp } = await import('../examples/tracing.js')
  const exporter = new InMemorySpanExporter()
  // The Long Polling client's fetch may leave a socket it opened for a poll it then aborted,
  // with no request on it: Node does not count that socket as idle, and close would wait
  // for its headers timeout (about 70 s) without forceCloseConnections
  const app = await buildTracedApp(exporter, { forceCloseConnections: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const client = await connect(t, `http://127.0.0.1:${port}/hubs/echo`, { transport: 'LongPolling' })
  t.equal(await client.invoke('Echo', 'traced'), 'traced')
  await client.stop()
  await until(() => exporter.getFinishedSpans().some((s) => s.name === '/hubs/echo/Echo'))
  const spans = exporter.getFinishedSpans()
  const echo = spans.find((s) => s.name === '/hubs/echo/Echo')
  t.match(echo?.attributes, { 'rpc.system': 'signalr', 'rpc.service': '/hubs/echo', 'rpc.method': 'Echo' })
  t.equal(spans.filter((s) => s.name === '/hubs/echo/Echo').length, 1, 'one span for one call')
})
