// The instruments as the OpenTelemetry SDK reads them, after scripted sessions of the
// official client on every transport and protocol, and byte-exact traffic from a raw client.
import { DataPointType, type SumMetricData } from '@opentelemetry/sdk-metrics'
import { test } from 'tap'
import { connect, VALID_MATRIX } from './fixtures/client.js'
import { histogramOf, memoryMetrics, valueOf } from './fixtures/otel.js'
import { RS, rawJsonConnection } from './fixtures/raw-client.js'
import { startServer } from './fixtures/server.js'
import { until } from './fixtures/until.js'

const TRANSPORT = { WebSockets: 'web_sockets', ServerSentEvents: 'server_sent_events', LongPolling: 'long_polling' } as const
const PATH = '/hubs/scenario'

for (const [transport, protocol] of VALID_MATRIX) {
  test(`metrics after a session over ${transport} / ${protocol}`, async (t) => {
    const otel = memoryMetrics()
    const { url, app } = await startServer(t, { plugin: { telemetry: { meterProvider: otel.meterProvider } } })
    const client = await connect(t, url, { transport, protocol, user: 'u1' })
    const wire = TRANSPORT[transport]

    for (let i = 0; i < 3; i++) t.equal(await client.invoke('Echo', `hi ${i}`), `hi ${i}`)
    await t.rejects(client.invoke('Fail'))
    const items: number[] = []
    await new Promise<void>((resolve, reject) => {
      client.stream('Counter', 3, 0).subscribe({ next: (n) => { items.push(n as number) }, complete: resolve, error: reject })
    })
    t.same(items, [0, 1, 2])

    let m = await otel.collect()
    const active = m.get('signalr.server.active_connections')
    t.equal(active?.descriptor.unit, '{connection}')
    t.equal(active?.dataPointType, DataPointType.SUM)
    t.equal((active as SumMetricData).isMonotonic, false, 'an up-down counter')
    t.equal(valueOf(active, { 'signalr.transport': wire }), 1, 'one active connection')

    const invocations = m.get('signalr.server.invocations')
    t.equal(invocations?.descriptor.unit, '{invocation}')
    const inv = (method: string, outcome: string): Record<string, string> => ({ 'signalr.hub': PATH, 'signalr.method': method, 'signalr.invocation.outcome': outcome })
    t.equal(valueOf(invocations, inv('Echo', 'ok')), 3)
    t.equal(valueOf(invocations, inv('Fail', 'error')), 1)
    t.equal(valueOf(invocations, inv('Counter', 'ok')), 1)
    const echoDuration = histogramOf(m.get('signalr.server.invocation.duration'), inv('Echo', 'ok'))
    t.equal(m.get('signalr.server.invocation.duration')?.descriptor.unit, 's')
    t.equal(echoDuration?.count, 3)

    // The client sent 5 messages after its handshake (3 Echo, Fail, the stream), plus the
    // Ping it sends right after the handshake where the transport has no inherent keep-alive,
    // and got 8 (4 Completions, 3 StreamItems, the stream's Completion); no server Ping is due yet
    const traffic = { 'signalr.hub': PATH, 'signalr.protocol': protocol }
    t.equal(valueOf(m.get('signalr.server.messages.received'), traffic), transport === 'LongPolling' ? 5 : 6)
    t.equal(valueOf(m.get('signalr.server.messages.sent'), traffic), 8)
    t.equal(m.get('signalr.server.bytes.sent')?.descriptor.unit, 'By')
    t.ok((valueOf(m.get('signalr.server.bytes.received'), traffic) ?? 0) >= 5 * 10, 'bytes received counted')
    t.ok((valueOf(m.get('signalr.server.bytes.sent'), traffic) ?? 0) >= 8 * 10, 'bytes sent counted')
    t.equal(valueOf(m.get('signalr.server.outbound.waiting'), { 'signalr.hub': PATH }), 0, 'nothing waits for a reading client')

    await client.stop()
    await until(async () => valueOf((await otel.collect()).get('signalr.server.active_connections'), { 'signalr.transport': wire }) === 0)
    m = await otel.collect()
    const duration = m.get('signalr.server.connection.duration')
    t.equal(duration?.descriptor.unit, 's')
    t.equal(duration?.dataPointType, DataPointType.HISTOGRAM)
    t.equal(duration?.dataPoints.length, 1, 'one attribute set')
    const h = histogramOf(duration, { 'signalr.connection.status': 'normal_closure', 'signalr.transport': wire })
    t.equal(h?.count, 1)
    t.same(h?.buckets.boundaries, [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300], 'the advised bucket boundaries')
    t.ok((h?.sum ?? 0) > 0 && (h?.sum ?? 0) < 60, 'a duration in seconds')
    // No connection or user id anywhere in an attribute
    for (const metric of m.values()) {
      for (const p of metric.dataPoints) {
        for (const v of Object.values(p.attributes)) t.notOk(String(v).includes('u1'), `${metric.descriptor.name}: no user id`)
      }
    }
    await app.close()
  })
}

test('connections open at shutdown end with app_shutdown', async (t) => {
  const otel = memoryMetrics()
  const { url, app } = await startServer(t, { plugin: { telemetry: { meterProvider: otel.meterProvider } } })
  await connect(t, url, { transport: 'WebSockets' })
  await connect(t, url, { transport: 'LongPolling' })
  await app.close()
  const m = await otel.collect()
  const duration = m.get('signalr.server.connection.duration')
  t.equal(histogramOf(duration, { 'signalr.connection.status': 'app_shutdown', 'signalr.transport': 'web_sockets' })?.count, 1)
  t.equal(histogramOf(duration, { 'signalr.connection.status': 'app_shutdown', 'signalr.transport': 'long_polling' })?.count, 1)
  t.equal(valueOf(m.get('signalr.server.active_connections'), { 'signalr.transport': 'web_sockets' }), 0)
})

test('a client that goes silent ends with timeout', async (t) => {
  const otel = memoryMetrics()
  const { base, app } = await startServer(t, {
    plugin: { telemetry: { meterProvider: otel.meterProvider }, clientTimeoutInterval: 200, keepAliveInterval: 50 }
  })
  const raw = await rawJsonConnection(t, base, PATH)
  // The timeout is armed by the client's first Ping; then it says nothing
  raw.send(`{"type":6}${RS}`)
  await raw.closed
  await until(async () => histogramOf((await otel.collect()).get('signalr.server.connection.duration'), { 'signalr.connection.status': 'timeout', 'signalr.transport': 'web_sockets' })?.count === 1)
  t.pass('recorded as timeout')
  await app.close()
})

test('traffic is counted byte for byte, and handshake failures by reason', async (t) => {
  const otel = memoryMetrics()
  const { base, app } = await startServer(t, { plugin: { telemetry: { meterProvider: otel.meterProvider } } })
  const raw = await rawJsonConnection(t, base, PATH)
  const call = `{"type":1,"invocationId":"1","target":"Echo","arguments":["hello"]}${RS}`
  raw.send(call + call.replace('"1"', '"2"'))
  const first = await raw.next()
  const second = await raw.next()
  const m = await otel.collect()
  const traffic = { 'signalr.hub': PATH, 'signalr.protocol': 'json' }
  t.equal(valueOf(m.get('signalr.server.messages.received'), traffic), 2)
  t.equal(valueOf(m.get('signalr.server.bytes.received'), traffic), Buffer.byteLength(call) * 2, 'the handshake is not counted')
  t.equal(valueOf(m.get('signalr.server.messages.sent'), traffic), 2)
  t.equal(valueOf(m.get('signalr.server.bytes.sent'), traffic), Buffer.byteLength(first as string) + Buffer.byteLength(second as string))
  t.equal(valueOf(m.get('signalr.server.messages.received'), { 'signalr.hub': PATH, 'signalr.protocol': 'messagepack' }), 0)

  // Two refused handshakes: an unknown protocol, then a line that is not JSON
  for (const hello of [`{"protocol":"xml","version":1}${RS}`, `nonsense${RS}`]) {
    const res = await fetch(`${base}${PATH}/negotiate?negotiateVersion=1`, { method: 'POST' })
    const { connectionToken } = await res.json() as { connectionToken: string }
    const { rawConnect } = await import('./fixtures/raw-client.js')
    const c = await rawConnect(t, `${base.replace('http', 'ws')}${PATH}?id=${connectionToken}`)
    c.send(hello)
    await c.closed
  }
  const failures = (await otel.collect()).get('signalr.server.handshake.failures')
  t.equal(valueOf(failures, { 'signalr.hub': PATH, 'error.type': 'unsupported_protocol' }), 1)
  t.equal(valueOf(failures, { 'signalr.hub': PATH, 'error.type': 'invalid' }), 1)
  await app.close()
})

test('a client that stops reading counts as a slow-client close', async (t) => {
  const otel = memoryMetrics()
  const { base, app } = await startServer(t, {
    plugin: { telemetry: { meterProvider: otel.meterProvider }, transportMaxBufferSize: 1024, transportSendTimeout: 300 }
  })
  const raw = await rawJsonConnection(t, base, PATH)
  // Stop reading: the socket fills, the server's buffer grows past its bound
  ;(raw.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  const slowCloses = async (): Promise<number> => {
    const slow = (await otel.collect()).get('signalr.server.slow_client.closes')
    return (valueOf(slow, { 'signalr.hub': PATH, 'error.type': 'buffer_full' }) ?? 0) + (valueOf(slow, { 'signalr.hub': PATH, 'error.type': 'send_timeout' }) ?? 0)
  }
  // Sends until the kernel's buffers are full and the server's bound is passed (the kernel
  // absorbs a few MiB first; see slow-consumer.test.ts)
  const chunk = 'x'.repeat(64 * 1024)
  const hub = app.signalr.hub(PATH)
  for (let sent = 0; app.signalr.connectionCount > 0 && sent < 64 * 1024 * 1024; sent += chunk.length) await hub.clients.all.send('Big', chunk)
  await until(async () => await slowCloses() === 1, 10_000)
  t.pass('one slow-client close')
  await app.close()
})

test('no SDK: the plugin runs on the API no-ops', async (t) => {
  const { url } = await startServer(t)
  const client = await connect(t, url, { transport: 'WebSockets' })
  t.equal(await client.invoke('Echo', 'x'), 'x')
})

test('a bad telemetry option is refused at register', async (t) => {
  const Fastify = (await import('fastify')).default
  const signalr = (await import('../index.js')).default
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await t.rejects(async () => { await app.register(signalr, { telemetry: { meterProvider: {} } } as never).ready() }, { code: 'FST_SIGNALR_INVALID_OPTION' })
})
