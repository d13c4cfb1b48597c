// The hub the admin page talks to: the snapshot on connect (then one per interval from the
// monitor) and the operator's two actions. TypeBox checks every argument; a hub or a
// connection that does not exist gets an error Completion that says so.
import Type from 'typebox'
import { HubError } from '../errors.js'
import { defineHub } from '../hub/define-hub.js'
import type { HubDefinition, SignalRRegistry } from '../../types/index.js'
import type { AdminMonitor } from './monitor.js'

const HubPath = Type.String({ minLength: 1, maxLength: 1024, pattern: '^/' })
const Name = Type.String({ minLength: 1, maxLength: 1024 })
const Method = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z_][A-Za-z0-9_.]*$' })
// A test message: a few JSON values, small (the hub's maximumReceiveMessageSize bounds it too)
const Args = Type.Array(Type.Unknown(), { maxItems: 16 })

export function adminHub (signalr: SignalRRegistry, adminPath: string, monitor: AdminMonitor): HubDefinition {
  function hubAt (path: string): ReturnType<SignalRRegistry['hub']> {
    if (path === adminPath || !signalr.paths.includes(path)) throw new HubError(`No hub is mapped at '${path}'.`)
    return signalr.hub(path)
  }
  return defineHub({
    methods: {
      Snapshot: { args: [], handler: async () => await monitor.current() },
      /** Ends a connection wherever it lives in the fleet; answers the hub it was on. */
      Disconnect: {
        args: [HubPath, Name],
        handler: async (_ctx, path, connectionId) => {
          const hub = hubAt(path)
          if (!(await hub.connections()).includes(connectionId)) throw new HubError(`No connection '${connectionId}' on hub '${path}'.`)
          await hub.close(connectionId)
          return true
        }
      },
      /** Sends `method(...args)` to a group; answers how many connections were in it. */
      SendToGroup: {
        args: [HubPath, Name, Method, Args],
        handler: async (_ctx, path, group, method, args) => {
          const hub = hubAt(path)
          const members = (await hub.groupMembers(group)).length
          await hub.clients.group(group).send(method, ...args)
          return members
        }
      }
    },
    onConnected () { monitor.viewerJoined() },
    onDisconnected () { monitor.viewerLeft() }
  })
}
