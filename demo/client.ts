// The demo page's script: the official @microsoft/signalr browser client (the `signalR`
// global of its UMD bundle), typed by the chat hub's schemas through fastify-signalr/client.
// demo/app.ts bundles it with esbuild; the hub comes in as a type only, so the bundle carries
// no schemas and no server code. Each tab keeps its own name, room and transport
// (sessionStorage), so two tabs are two people.
import type * as SignalR from '@microsoft/signalr'
import type { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { typedHub, type TypedHub } from 'fastify-signalr/client'
import type { chatHub, Person } from './chat-hub.js'

declare const signalR: typeof SignalR & { protocols: { msgpack: { MessagePackHubProtocol: typeof MessagePackHubProtocol } } }

type Transport = 'WebSockets' | 'ServerSentEvents' | 'LongPolling'
type Protocol = 'json' | 'messagepack'
type Chat = TypedHub<typeof chatHub>

const $ = <T extends HTMLElement = HTMLInputElement>(id: string): T => document.getElementById(id) as T
const ROOMS = ['lobby', 'garden', 'kitchen']
const LABELS: Record<Transport | Protocol, string> = { WebSockets: 'WebSockets', ServerSentEvents: 'Server-Sent Events', LongPolling: 'Long Polling', json: 'JSON', messagepack: 'MessagePack' }
const state = {
  name: sessionStorage.getItem('name') ?? '',
  room: sessionStorage.getItem('room') ?? 'lobby',
  transport: (sessionStorage.getItem('transport') ?? 'WebSockets') as Transport,
  protocol: (sessionStorage.getItem('protocol') ?? 'json') as Protocol
}
let hub: Chat | undefined
let switching = false

function save (): void {
  for (const k of ['name', 'room', 'transport', 'protocol'] as const) sessionStorage.setItem(k, state[k])
}

function setStatus (kind: string, text: string): void {
  $('status').className = kind
  $('status').textContent = text
  // Which connection the page is on, for whoever looks (the demo's browser test does)
  $('status').dataset.connectionId = kind === 'connected' ? hub?.connection.connectionId ?? '' : ''
  $<HTMLButtonElement>('send').disabled = kind !== 'connected'
}

function scrollDown (): void { $('log').scrollTop = $('log').scrollHeight }

function notice (text: string, cls = ''): void {
  const line = document.createElement('div')
  line.className = `notice ${cls}`
  line.textContent = text
  $('log').append(line)
  scrollDown()
}

function message (from: string, text: string): void {
  const box = document.createElement('div')
  box.className = from === state.name ? 'msg mine' : 'msg'
  const who = document.createElement('div')
  who.className = 'who'
  who.textContent = from === state.name ? 'you' : from
  const body = document.createElement('div')
  body.className = 'text'
  body.textContent = text
  box.append(who, body)
  $('log').append(box)
  scrollDown()
}

function renderRooms (): void {
  const rooms = ROOMS.includes(state.room) ? ROOMS : [...ROOMS, state.room]
  $('rooms').replaceChildren(...rooms.map((room) => {
    const b = document.createElement('button')
    b.type = 'button'
    b.textContent = room
    b.className = room === state.room ? 'current' : ''
    b.onclick = () => { void join(room) }
    return b
  }))
  $('roomTitle').textContent = `# ${state.room}`
  $('onlineTitle').textContent = `Online in ${state.room}`
}

function renderOnline (people: readonly Person[]): void {
  $('online').replaceChildren(...people.map((p) => {
    const li = document.createElement('li')
    const name = document.createElement('span')
    name.textContent = p.name
    if (p.name === state.name) name.className = 'me'
    li.append(name)
    if (p.connections > 1) {
      const tabs = document.createElement('span')
      tabs.className = 'tabs'
      tabs.textContent = `${p.connections} tabs`
      li.append(tabs)
    }
    return li
  }))
}

async function join (room: string): Promise<void> {
  if (hub === undefined) return
  try {
    // Typed by the hub: { room: string, online: Person[] }
    const answer = await hub.invoke.Join(room)
    if (answer.room !== state.room) $('log').replaceChildren()
    state.room = answer.room
    save()
    renderRooms()
    renderOnline(answer.online)
  } catch (err) {
    notice((err as Error).message, 'error')
  }
}

function describe (): string { return `${LABELS[state.transport]} · ${LABELS[state.protocol]}` }

async function connect (): Promise<void> {
  if (hub !== undefined) {
    switching = true
    await hub.connection.stop()
    switching = false
  }
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(`/hubs/chat?name=${encodeURIComponent(state.name)}`, { transport: signalR.HttpTransportType[state.transport] })
    // Keep trying while the demo server is down: pages come back on their own
    .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (retry) => Math.min(250 * 2 ** retry.previousRetryCount, 5000) })
    .configureLogging(signalR.LogLevel.Warning)
  if (state.protocol === 'messagepack') builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
  const h = hub = typedHub<typeof chatHub>(builder.build())
  // Each handler's parameters are typed by the hub's `client` schemas
  h.on.Message((room, from, text) => { if (room === state.room) message(from, text) })
  h.on.Notice((room, text) => { if (room === state.room) notice(text) })
  h.on.Online((room, people) => { if (room === state.room) renderOnline(people) })
  h.connection.onreconnecting(() => { setStatus('reconnecting', 'reconnecting…') })
  h.connection.onreconnected(async () => {
    setStatus('connected', `connected · ${describe()}`)
    // A new connection has no groups yet: back into the room
    await join(state.room)
  })
  h.connection.onclose((err) => {
    if (switching || h !== hub) return
    setStatus('offline', err !== undefined ? `offline: ${err.message}` : 'offline')
  })
  setStatus('', `connecting · ${describe()}`)
  try {
    await h.connection.start()
    setStatus('connected', `connected · ${describe()}`)
    await join(state.room)
  } catch (err) {
    setStatus('offline', `could not connect: ${(err as Error).message}`)
  }
}

const transport = $<HTMLSelectElement>('transport')
const protocol = $<HTMLSelectElement>('protocol')
transport.value = state.transport
protocol.value = state.protocol
transport.onchange = protocol.onchange = () => {
  // MessagePack is binary: Server-Sent Events carry text only
  if (transport.value === 'ServerSentEvents' && protocol.value === 'messagepack') protocol.value = 'json'
  state.transport = transport.value as Transport
  state.protocol = protocol.value as Protocol
  save()
  notice(`switching to ${describe()}`)
  void connect()
}

$<HTMLFormElement>('composer').onsubmit = async (event) => {
  event.preventDefault()
  const text = $('text').value.trim()
  if (text === '' || hub?.connection.state !== signalR.HubConnectionState.Connected) return
  $('text').value = ''
  try {
    await hub.invoke.Send(text)
  } catch (err) {
    notice((err as Error).message, 'error')
    $('text').value = text
  }
}

$<HTMLFormElement>('newRoom').onsubmit = (event) => {
  event.preventDefault()
  const room = $('roomName').value.trim()
  if (room === '') return
  $('roomName').value = ''
  void join(room)
}

$<HTMLFormElement>('nameForm').onsubmit = (event) => {
  event.preventDefault()
  state.name = $('name').value.trim()
  if (state.name === '') return
  save()
  $('welcome').hidden = true
  renderRooms()
  void connect()
  $('text').focus()
}

renderRooms()
if (state.name !== '') {
  $('welcome').hidden = true
  void connect()
} else {
  setStatus('', 'pick a name')
  $('name').focus()
}
