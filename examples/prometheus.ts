// Metrics for Prometheus: the OpenTelemetry SDK with its Prometheus exporter, served by the
// app itself at GET /metrics, next to a hub. Run with: node --import tsx examples/prometheus.ts
import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import signalr, { defineHub } from 'fastify-signalr'

// The SDK comes first: the plugin takes the global MeterProvider when it is registered
const exporter = new PrometheusExporter({ preventServerStart: true })
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }))

const chat = defineHub({
  methods: {
    Send: { args: [Type.String(), Type.String()], async handler (ctx, user, text) { await ctx.clients.all.send('ReceiveMessage', user, text) } },
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text }
  }
})

export async function buildMetricsApp (): Promise<FastifyInstance> {
  const app = Fastify({ logger: true })
  await app.register(signalr)
  app.hub('/hubs/chat', chat)
  // Guard it like any route (an onRequest hook, a separate listener) if the port is public
  app.get('/metrics', (request, reply) => {
    reply.hijack()
    exporter.getMetricsRequestHandler(request.raw, reply.raw)
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildMetricsApp()
  await app.listen({ port: 3000 })
}
