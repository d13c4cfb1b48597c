// The demo's chat hub: broadcasts, rooms (groups), validated arguments and presence. It
// declares the client's methods too, so the page (demo/client.ts) is typed by these schemas.
import Type from 'typebox'
import { defineHub } from '../index.js'

const Name = Type.String({ minLength: 1, maxLength: 32 })
const Text = Type.String({ minLength: 1, maxLength: 200 })

export const chatHub = defineHub({
  methods: {
    // maxLength: the browser page shows the validation error a too-long message gets
    Send: {
      args: [Name, Text],
      async handler (ctx, user, text) {
        await ctx.clients.all.send('ReceiveMessage', user, text)
      }
    },
    JoinRoom: {
      args: [Name],
      returns: Type.Array(Type.String()),
      async handler (ctx, room) {
        await ctx.groups.add(ctx.connectionId, room)
        await ctx.clients.group(room).send('RoomNotice', room, `${ctx.connectionId} joined`)
        return await ctx.hub.groupMembers(room)
      }
    },
    LeaveRoom: {
      args: [Name],
      async handler (ctx, room) { await ctx.groups.remove(ctx.connectionId, room) }
    },
    SendToRoom: {
      args: [Name, Name, Text],
      async handler (ctx, room, user, text) {
        await ctx.clients.group(room).send('RoomMessage', room, user, text)
      }
    },
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text },
    Online: { args: [], returns: Type.Integer(), handler: async (ctx) => await ctx.hub.connectionCount() }
  },
  // What the hub calls on the page
  client: {
    ReceiveMessage: { args: [Type.String(), Type.String()] },
    RoomMessage: { args: [Type.String(), Type.String(), Type.String()] },
    RoomNotice: { args: [Type.String(), Type.String()] },
    Presence: { args: [Type.Union([Type.Literal('joined'), Type.Literal('left')]), Type.String()] }
  },
  async onConnected (ctx) {
    await ctx.clients.others.send('Presence', 'joined', ctx.connectionId)
  },
  async onDisconnected (ctx) {
    await ctx.clients.others.send('Presence', 'left', ctx.connectionId)
  }
})
