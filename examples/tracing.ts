// Traces: one span per hub method call, sent to any SpanExporter (OTLP in production).
// Register @fastify/otel as well and they nest under the span of the request that opened
// the connection (test/telemetry-traces.test.ts shows it on every transport).
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import Type from 'typebox'
import signalr, { defineHub } from 'fastify-signalr'

export async function buildTracedApp (exporter: SpanExporter, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  // Context must flow through async calls for spans to nest: AsyncLocalStorage does that
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))

  const app = Fastify(options)
  await app.register(signalr)
  app.hub('/hubs/echo', defineHub({
    methods: { Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text } }
  }))
  return app
}
