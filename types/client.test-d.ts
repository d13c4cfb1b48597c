// Compile-time tests of fastify-signalr/client: `npm test` runs tsc over this file, and
// test/type-mistakes.test.ts checks that each expect-error below fails with the code it names.
import { HubConnectionBuilder, Subject, type IStreamResult } from '@microsoft/signalr'
import Type from 'typebox'
import { defineHub } from 'fastify-signalr'
import { typedHub, type TypedHub } from 'fastify-signalr/client'
import { typedChat } from '../test/fixtures/typed-hub.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assert<T extends true> (): void {}

// The hub the typed client's run-time tests drive, so both kinds of test check one contract
const chat = typedChat

async function client (): Promise<void> {
  const connection = new HubConnectionBuilder().withUrl('http://localhost/hubs/chat').build()
  const hub = typedHub<typeof chat>(connection)
  assert<Equal<typeof hub, TypedHub<typeof chat>>>()

  const echoed = await hub.invoke.Echo('hi')
  assert<Equal<typeof echoed, string>>()
  await hub.send.Send('ann', 'hello')
  const counter = hub.stream.Counter(3)
  assert<Equal<typeof counter, IStreamResult<number>>>()
  counter.subscribe({
    next: (n) => { assert<Equal<typeof n, number>>() },
    error: () => {},
    complete: () => {}
  })
  const numbers = new Subject<number>()
  const sum = await hub.invoke.Sum('total', numbers)
  assert<Equal<typeof sum, { label: string, total: number }>>()
  const off = hub.on.ReceiveMessage((user, text) => {
    assert<Equal<typeof user, string>>()
    assert<Equal<typeof text, string>>()
  })
  off()
  hub.handle.Confirm(async (question) => question.length > 0)
  hub.handle.Confirm((question) => question === 'yes')
  const asked = await hub.invoke.Ask('sure?')
  assert<Equal<typeof asked, string>>()
  await hub.connection.start()

  // @ts-expect-error TS2339 a misspelled hub method
  await hub.invoke.Ecco('hi')
  // @ts-expect-error TS2345 a wrong argument type
  await hub.invoke.Echo(1)
  // @ts-expect-error TS2554 a missing argument
  await hub.send.Send('ann')
  // @ts-expect-error TS2339 a streaming method is not invoked
  await hub.invoke.Counter(1)
  // @ts-expect-error TS2339 a method that does not stream has no stream
  hub.stream.Echo('hi')
  // @ts-expect-error TS2345 a wrong handler signature
  hub.on.ReceiveMessage((user: number) => { void user })
  // @ts-expect-error TS2322 a client result handler that answers the wrong type
  hub.handle.Confirm(async () => 'yes')
  // @ts-expect-error TS2339 a client result is answered with handle, not on
  hub.on.Confirm(() => {})
  // @ts-expect-error TS2551 a misspelled client method
  hub.on.RecieveMessage(() => {})
  // @ts-expect-error TS2322 a wrong stream item type
  const wrongItems: IStreamResult<string> = hub.stream.Counter(1)
  void wrongItems
  // @ts-expect-error TS2322 a wrong stream item type in the subscriber
  hub.stream.Counter(1).subscribe({ next: (s: string) => { void s }, error: () => {}, complete: () => {} })
  // @ts-expect-error TS2345 an upload of the wrong item type
  await hub.send.Sum('total', new Subject<string>())
  // @ts-expect-error TS2554 an upload is a stream argument the call must pass
  await hub.invoke.Sum('total')
}
void client

// A hub without `client` schemas: its client methods stay untyped, as on the server
const plain = defineHub({ methods: { Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, t) => t } } })
async function untypedClient (): Promise<void> {
  const hub = typedHub<typeof plain>(new HubConnectionBuilder().withUrl('http://localhost/hubs/plain').build())
  hub.on.Anything((...args) => { assert<Equal<typeof args, unknown[]>>() })
  const echoed = await hub.invoke.Echo('x')
  assert<Equal<typeof echoed, string>>()
}
void untypedClient
