// The demo's chat hub: people with names, in rooms (groups), with a live list of who is in
// each room built from the presence API. It declares what it calls on the page (`client`), so
// the page's script (demo/client.ts) is typed by these schemas, both ways.
import Type, { type Static } from 'typebox'
import { defineHub, type InvocationContext } from '../index.js'

const Room = Type.String({ minLength: 1, maxLength: 32, pattern: '^[\\w -]+$' })
const Text = Type.String({ minLength: 1, maxLength: 500 })
const PersonSchema = Type.Object({ name: Type.String(), connections: Type.Integer({ minimum: 1 }) })

export type Person = Static<typeof PersonSchema>

/** The name each connection chose (the hub's user id): presence answers in connection ids. */
const names = new Map<string, string>()

const nameOf = (ctx: InvocationContext): string => ctx.userId ?? 'guest'
const roomOf = (ctx: InvocationContext): string | undefined => ctx.items.get('room') as string | undefined

/** Who is in a room, one line per name, with how many of that name's tabs are there. */
async function online (ctx: InvocationContext, room: string): Promise<Person[]> {
  const counts = new Map<string, number>()
  for (const id of await ctx.hub.groupMembers(room)) {
    const name = names.get(id)
    if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  return [...counts].map(([name, connections]) => ({ name, connections })).sort((a, b) => a.name.localeCompare(b.name))
}

async function announce (ctx: InvocationContext, room: string, text: string): Promise<void> {
  await ctx.clients.group(room).send('Notice', room, text)
  await ctx.clients.group(room).send('Online', room, await online(ctx, room))
}

async function leave (ctx: InvocationContext): Promise<void> {
  const room = roomOf(ctx)
  if (room === undefined) return
  ctx.items.delete('room')
  await ctx.groups.remove(ctx.connectionId, room)
  await announce(ctx, room, `${nameOf(ctx)} left`)
}

export const chatHub = defineHub({
  methods: {
    /** Moves the caller into a room (out of the one it was in) and answers who is there. */
    Join: {
      args: [Room],
      returns: Type.Object({ room: Room, online: Type.Array(PersonSchema) }),
      async handler (ctx, room) {
        if (roomOf(ctx) !== room) {
          await leave(ctx)
          ctx.items.set('room', room)
          await ctx.groups.add(ctx.connectionId, room)
          await announce(ctx, room, `${nameOf(ctx)} joined`)
        }
        return { room, online: await online(ctx, room) }
      }
    },
    /** A message to everyone in the caller's room. */
    Send: {
      args: [Text],
      returns: Type.Boolean(),
      async handler (ctx, text) {
        const room = roomOf(ctx)
        if (room === undefined) return false
        await ctx.clients.group(room).send('Message', room, nameOf(ctx), text)
        return true
      }
    },
    Online: { args: [Room], returns: Type.Array(PersonSchema), handler: async (ctx, room) => await online(ctx, room) }
  },
  // What the hub calls on the page
  client: {
    Message: { args: [Room, Type.String(), Text] },
    Notice: { args: [Room, Type.String()] },
    Online: { args: [Room, Type.Array(PersonSchema)] }
  },
  onConnected (ctx) {
    names.set(ctx.connectionId, nameOf(ctx))
  },
  async onDisconnected (ctx) {
    await leave(ctx)
    names.delete(ctx.connectionId)
  }
})
