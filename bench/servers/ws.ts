// The floor: raw `ws` with SignalR's own framing and nothing else. A token-only negotiate,
// the `{}` handshake answer, Echo -> Completion, BroadcastEcho -> "Receive" to everyone
// (serialised once per protocol). JSON (0x1E records) and MessagePack (VarInt frames).
// No validation, no per-connection timers, no per-connection state beyond the protocol.
// With KEEPALIVE_MS, one shared interval sends a Ping to every connection (the keep-alive
// SignalR requires, at its cheapest); with BENCH_STATS=1 it serves the scale probes.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { decode, encode } from '@msgpack/msgpack'
import { WebSocketServer, type WebSocket } from 'ws'
import { benchStats } from './stats.js'

const HUB = '/hubs/scenario'
const RS = 0x1e
const HANDSHAKE_OK = Buffer.from('{}\u001e')

interface Peer { binary: boolean }
const json = new Set<WebSocket>()
const msgpack = new Set<WebSocket>()
const peers = new WeakMap<WebSocket, Peer>()

function varIntFrame (body: Uint8Array): Buffer {
  const prefix: number[] = []
  let n = body.length
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n > 0) b |= 0x80
    prefix.push(b)
  } while (n > 0)
  const out = Buffer.allocUnsafe(prefix.length + body.length)
  for (let i = 0; i < prefix.length; i++) out[i] = prefix[i]
  out.set(body, prefix.length)
  return out
}

function broadcast (text: string): void {
  if (json.size > 0) {
    const frame = JSON.stringify({ type: 1, target: 'Receive', arguments: [text] }) + '\u001e'
    for (const s of json) s.send(frame)
  }
  if (msgpack.size > 0) {
    const frame = varIntFrame(encode([1, {}, null, 'Receive', [text], []]))
    for (const s of msgpack) s.send(frame, { binary: true })
  }
}

function onJson (ws: WebSocket, data: Buffer, start: number): void {
  let end: number
  while ((end = data.indexOf(RS, start)) !== -1) {
    const m = JSON.parse(data.toString('utf8', start, end)) as { type: number, invocationId?: string, target?: string, arguments?: unknown[] }
    start = end + 1
    if (m.type === 1) {
      if (m.target === 'Echo') ws.send(JSON.stringify({ type: 3, invocationId: m.invocationId, result: m.arguments?.[0] }) + '\u001e')
      else if (m.target === 'BroadcastEcho') {
        broadcast(m.arguments?.[0] as string)
        if (m.invocationId !== undefined) ws.send(JSON.stringify({ type: 3, invocationId: m.invocationId }) + '\u001e')
      }
    } else if (m.type === 7) ws.close(1000)
  }
}

function onMsgpack (ws: WebSocket, data: Buffer, offset: number): void {
  while (offset < data.length) {
    let length = 0
    let shift = 0
    let b: number
    do {
      b = data[offset++]
      length |= (b & 0x7f) << shift
      shift += 7
    } while ((b & 0x80) !== 0)
    const m = decode(data.subarray(offset, offset + length)) as unknown[]
    offset += length
    if (m[0] === 1) {
      const id = m[2] as string | null
      const args = m[4] as unknown[]
      if (m[3] === 'Echo') ws.send(varIntFrame(encode([3, {}, id, 3, args[0]])), { binary: true })
      else if (m[3] === 'BroadcastEcho') {
        broadcast(args[0] as string)
        if (id !== null) ws.send(varIntFrame(encode([3, {}, id, 2])), { binary: true })
      }
    } else if (m[0] === 7) ws.close(1000)
  }
}

const stats = process.env.BENCH_STATS === '1' ? benchStats(broadcast) : undefined
if (process.env.KEEPALIVE_MS !== undefined) {
  const ping = Buffer.from('{"type":6}\u001e')
  const pingBinary = varIntFrame(encode([6]))
  setInterval(() => {
    for (const s of json) s.send(ping)
    for (const s of msgpack) s.send(pingBinary, { binary: true })
  }, Number(process.env.KEEPALIVE_MS)).unref()
}

const server = http.createServer((req, res) => {
  if (stats !== undefined && req.url?.startsWith('/bench/') === true) {
    void stats.handle(req, res)
    return
  }
  if (req.method === 'POST' && req.url?.startsWith(`${HUB}/negotiate`) === true) {
    req.resume()
    const token = randomBytes(16).toString('base64url')
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({
      negotiateVersion: 1,
      connectionId: randomBytes(16).toString('base64url'),
      connectionToken: token,
      availableTransports: [{ transport: 'WebSockets', transferFormats: ['Text', 'Binary'] }]
    }))
    return
  }
  res.writeHead(404).end()
})

const wss = new WebSocketServer({ server, path: HUB, perMessageDeflate: false, clientTracking: false })
wss.on('connection', (ws) => {
  ws.on('error', () => {})
  ws.on('close', () => { json.delete(ws); msgpack.delete(ws) })
  ws.on('message', (data: Buffer) => {
    const peer = peers.get(ws)
    if (peer === undefined) {
      const end = data.indexOf(RS)
      const { protocol } = JSON.parse(data.toString('utf8', 0, end)) as { protocol: string }
      const binary = protocol === 'messagepack'
      peers.set(ws, { binary })
      ;(binary ? msgpack : json).add(ws)
      ws.send(HANDSHAKE_OK, { binary })
      if (end + 1 < data.length) (binary ? onMsgpack : onJson)(ws, data, end + 1)
      return
    }
    if (peer.binary) onMsgpack(ws, data, 0)
    else onJson(ws, data, 0)
  })
})

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const a = server.address()
  console.log(`listening http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`)
})
function stop (): void {
  if (stats === undefined) {
    setTimeout(() => { process.exit(0) }, 1000).unref()
    wss.close()
    server.close(() => { process.exit(0) })
    for (const s of [...json, ...msgpack]) s.terminate()
    return
  }
  // Timed like app.close(): a Close message and a closing handshake on every connection
  setTimeout(() => { process.exit(0) }, 120_000).unref()
  const t0 = performance.now()
  const all = [...json, ...msgpack]
  let open = all.length
  const done = (): void => {
    console.log(`bench closed-in-ms ${(performance.now() - t0).toFixed(1)}`)
    process.exit(0)
  }
  if (open === 0) done()
  const close = Buffer.from('{"type":7}\u001e')
  for (const s of all) {
    s.once('close', () => { if (--open === 0) done() })
    s.send(close)
    s.close(1000)
  }
  wss.close()
  server.close()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
