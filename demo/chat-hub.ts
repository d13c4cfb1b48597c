// The demo's chat hub: broadcasts, rooms (groups), validated arguments and presence.
import Type from 'typebox'
import { defineHub } from '../index.js'

export const chatHub = defineHub({
  methods: {
    // maxLength: the browser page shows the validation error a too-long message gets
    Send: {
      args: [Type.String({ minLength: 1, maxLength: 32 }), Type.String({ minLength: 1, maxLength: 200 })],
      async handler (ctx, user, text) {
        await ctx.clients.all.send('ReceiveMessage', user, text)
      }
    },
    JoinRoom: {
      args: [Type.String({ minLength: 1, maxLength: 32 })],
      async handler (ctx, room) {
        await ctx.groups.add(ctx.connectionId, room)
        await ctx.clients.group(room).send('RoomNotice', room, `${ctx.connectionId} joined`)
        return await ctx.hub.groupMembers(room)
      }
    },
    LeaveRoom: {
      args: [Type.String({ minLength: 1, maxLength: 32 })],
      async handler (ctx, room) { await ctx.groups.remove(ctx.connectionId, room) }
    },
    SendToRoom: {
      args: [Type.String({ minLength: 1, maxLength: 32 }), Type.String({ minLength: 1, maxLength: 32 }), Type.String({ minLength: 1, maxLength: 200 })],
      async handler (ctx, room, user, text) {
        await ctx.clients.group(room).send('RoomMessage', room, user, text)
      }
    },
    Echo: { args: [Type.String()], returns: Type.String(), handler: (_ctx, text) => text },
    Online: { args: [], returns: Type.Integer(), handler: async (ctx) => await ctx.hub.connectionCount() }
  },
  async onConnected (ctx) {
    await ctx.clients.others.send('Presence', 'joined', ctx.connectionId)
  },
  async onDisconnected (ctx) {
    await ctx.clients.others.send('Presence', 'left', ctx.connectionId)
  }
})
