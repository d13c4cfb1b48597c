// Register-time option validation and hub definition checks.
import Fastify from 'fastify'
import { test } from 'tap'
import Type from 'typebox'
import signalr, { defineHub, type HubDefinition } from '../index.js'
import { DEFAULTS } from '../lib/options.js'
import { scenarioHub } from './fixtures/scenario-hub.js'

test('the defaults are ASP.NET Core\'s', async (t) => {
  t.equal(DEFAULTS.keepAliveInterval, 15_000)
  t.equal(DEFAULTS.clientTimeoutInterval, 30_000)
  t.equal(DEFAULTS.handshakeTimeout, 15_000)
  t.equal(DEFAULTS.maximumReceiveMessageSize, 32_768)
  t.equal(DEFAULTS.maximumParallelInvocationsPerClient, 1)
  t.equal(DEFAULTS.streamBufferCapacity, 10)
  t.equal(DEFAULTS.longPollTimeout, 90_000)
  t.equal(DEFAULTS.disconnectTimeout, 15_000)
  t.equal(DEFAULTS.transportSendTimeout, 10_000)
  t.equal(DEFAULTS.statefulReconnectBufferSize, 100_000)
  t.equal(DEFAULTS.enableDetailedErrors, false)
  t.equal(DEFAULTS.allowStatefulReconnects, false)
})

const bad: Array<[Record<string, unknown>, RegExp]> = [
  [{ keepAliveInterval: 0 }, /option 'keepAliveInterval': must be >= 1/],
  [{ keepAliveInterval: 'fast' }, /option 'keepAliveInterval': must be integer/],
  [{ maximumParallelInvocationsPerClient: 0 }, /'maximumParallelInvocationsPerClient'/],
  [{ transports: ['Carrier Pigeon'] }, /'transports.0'/],
  [{ transports: [] }, /'transports'/],
  [{ protocols: ['xml'] }, /'protocols.0'/],
  [{ enableDetailedErrors: 'yes' }, /'enableDetailedErrors': must be boolean/],
  [{ keepAliveIntervall: 5 }, /option 'keepAliveIntervall': is not a known option/]
]

for (const [options, message] of bad) {
  test(`a bad option fails register with an FST_SIGNALR_ error naming it: ${JSON.stringify(options)}`, async (t) => {
    const app = Fastify()
    t.teardown(async () => { await app.close() })
    await t.rejects(async () => { await app.register(signalr, options as never).ready() }, { code: 'FST_SIGNALR_INVALID_OPTION', message })
  })
}

test('bad per-hub options and bad hubs fail at app.hub()', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr)
  t.throws(() => app.hub('/h', scenarioHub, { handshakeTimeout: -1 }), { code: 'FST_SIGNALR_INVALID_OPTION', message: /'handshakeTimeout'/ })
  t.throws(() => app.hub('no-slash', scenarioHub), { code: 'FST_SIGNALR_INVALID_ARGUMENT' })
  t.throws(() => app.hub('/h2', { methods: { X: { args: [], handler: 5 } } } as unknown as HubDefinition), { code: 'FST_SIGNALR_INVALID_HUB' })
  t.throws(() => defineHub({ methods: { a: { args: [], handler () {} }, A: { args: [], handler () {} } } }), {
    code: 'FST_SIGNALR_INVALID_HUB', message: /differ only in case/
  })
  t.throws(() => defineHub({ methods: { a: { args: ['not a schema'] as never, handler () {} } } }), { code: 'FST_SIGNALR_INVALID_HUB' })
  app.hub('/ok', scenarioHub)
  t.throws(() => app.hub('/ok', scenarioHub), { code: 'FST_SIGNALR_DUPLICATE_HUB' })
  t.throws(() => app.hub('/ok/', scenarioHub), { code: 'FST_SIGNALR_DUPLICATE_HUB' }, 'a trailing slash is the same path')
})

test('Fastify register options (prefix, logLevel) are not mistaken for ours', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(signalr, { logLevel: 'warn' } as never)
  t.ok(app.signalr)
})

test('the plugin exports', async (t) => {
  const mod = await import('../index.js')
  t.equal(typeof mod.default, 'function')
  t.equal(mod.default, mod.fastifySignalR)
  t.equal(typeof mod.defineHub, 'function')
  t.equal(typeof mod.HubError, 'function')
  t.ok(Type.String())
})
