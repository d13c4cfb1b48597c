// The demo page's script: the official browser client (the `signalR` global of its UMD
// bundle), typed by the chat hub's schemas through fastify-signalr/client. demo/server.ts
// bundles it with esbuild; the hub comes in as a type only, so the bundle holds no schemas.
import type * as SignalR from '@microsoft/signalr'
import type { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { typedHub, type TypedHub } from 'fastify-signalr/client'
import type { chatHub } from './chat-hub.js'

declare const signalR: typeof SignalR & { protocols: { msgpack: { MessagePackHubProtocol: typeof MessagePackHubProtocol } } }

const $ = <T extends HTMLElement = HTMLInputElement>(id: string): T => document.getElementById(id) as T

function log (text: string, cls?: string): void {
  const line = document.createElement('div')
  if (cls !== undefined) line.className = cls
  line.textContent = text
  $('log').append(line)
  $('log').scrollTop = $('log').scrollHeight
}

let hub: TypedHub<typeof chatHub> | undefined

async function start (): Promise<void> {
  if (hub !== undefined) await hub.connection.stop()
  const transport = $<HTMLSelectElement>('transport').value as keyof typeof signalR.HttpTransportType
  const protocol = $<HTMLSelectElement>('protocol').value
  const builder = new signalR.HubConnectionBuilder()
    .withUrl('/hubs/chat', { transport: signalR.HttpTransportType[transport] })
    .withAutomaticReconnect()
  if (protocol === 'messagepack') builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
  const h = typedHub<typeof chatHub>(builder.build())
  hub = h
  h.on.ReceiveMessage((user, text) => { log(`${user}: ${text}`) })
  h.on.RoomMessage((room, user, text) => { log(`[${room}] ${user}: ${text}`, 'room') })
  h.on.RoomNotice((room, text) => { log(`[${room}] ${text}`, 'notice') })
  h.on.Presence((what, id) => { log(`${id} ${what}`, 'notice'); void refreshOnline() })
  h.connection.onreconnecting(() => { $('status').textContent = 'reconnecting…' })
  h.connection.onreconnected(() => { $('status').textContent = 'connected (reconnected)' })
  h.connection.onclose((err) => { $('status').textContent = 'disconnected' + (err !== undefined ? `: ${err.message}` : '') })
  try {
    await h.connection.start()
    $('status').textContent = `connected over ${transport} / ${protocol} as ${String(h.connection.connectionId)}`
    await refreshOnline()
  } catch (err) {
    $('status').textContent = 'failed: ' + (err as Error).message
  }
}

async function refreshOnline (): Promise<void> {
  try {
    if (hub !== undefined) $('online').textContent = `(${await hub.invoke.Online()} online)`
  } catch {}
}

/** Runs a hub call; a refusal (a validation error, say) is shown in the log. */
async function call<T> (run: (h: TypedHub<typeof chatHub>) => Promise<T>): Promise<T | undefined> {
  if (hub === undefined) return undefined
  try {
    return await run(hub)
  } catch (err) {
    log((err as Error).message, 'error')
    return undefined
  }
}

const value = (id: string): string => $(id).value
$('send').onclick = () => { void call(async (h) => { await h.invoke.Send(value('user'), value('text')) }) }
$('join').onclick = () => {
  void call(async (h) => await h.invoke.JoinRoom(value('room'))).then((members) => {
    if (members !== undefined) log(`joined ${value('room')}: ${members.length} member(s)`, 'notice')
  })
}
$('leave').onclick = () => { void call(async (h) => { await h.invoke.LeaveRoom(value('room')) }) }
$('sendRoom').onclick = () => { void call(async (h) => { await h.invoke.SendToRoom(value('room'), value('user'), value('text')) }) }
$('reconnect').onclick = () => { void start() }
void start()
