// fastify-signalr/client: the official HubConnection, typed by a hub's schemas. It imports
// nothing at run time (the types come from `typeof hub`), so a browser bundle carries neither
// the server nor its schemas; method names are read off property access.
import type { HubConnection } from '@microsoft/signalr'
import type { HubDefinition } from '../../types/index.js'
import type { TypedHub } from '../../types/client.js'

export type { CallArgs, TypedHub, Unsubscribe } from '../../types/client.js'

type Make = (name: string) => (...args: never[]) => unknown

/** An object whose every property is a method named after it, made once per name. */
function byName (make: Make): Readonly<Record<string, (...args: never[]) => unknown>> {
  const made = new Map<string, (...args: never[]) => unknown>()
  return new Proxy(Object.create(null) as Record<string, (...args: never[]) => unknown>, {
    get (_target, key) {
      // Not a method name: symbols, and `then`, so that awaiting the object does not call the hub
      if (typeof key !== 'string' || key === 'then') return undefined
      let fn = made.get(key)
      if (fn === undefined) {
        fn = make(key)
        made.set(key, fn)
      }
      return fn
    }
  })
}

/**
 * Wraps a HubConnection: `typedHub<typeof chat>(connection)`. `invoke`, `send` and `stream`
 * call hub methods; `on` and `handle` register client methods, each returning its unsubscribe.
 */
export function typedHub<H extends HubDefinition> (connection: HubConnection): TypedHub<H> {
  const register = (name: string) => (handler: (...args: unknown[]) => unknown) => {
    connection.on(name, handler)
    return () => { connection.off(name, handler) }
  }
  return {
    connection,
    invoke: byName((name) => async (...args: unknown[]) => await connection.invoke(name, ...args)),
    send: byName((name) => async (...args: unknown[]) => { await connection.send(name, ...args) }),
    stream: byName((name) => (...args: unknown[]) => connection.stream(name, ...args)),
    on: byName(register),
    handle: byName(register)
  } as unknown as TypedHub<H>
}
