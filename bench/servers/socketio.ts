// Socket.IO 4 peer: the same work as the hub: 'echo' answers through the ack, and
// 'broadcastEcho' is io.emit('receive', text) to every client. Default options (JSON parser,
// or socket.io-msgpack-parser with SIO_PARSER=msgpack) except that no client bundle is
// served and compression is off, as for the others.
// With REDIS_PORT set, @socket.io/redis-adapter carries emits between processes.
import http from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'
import msgpackParser from 'socket.io-msgpack-parser'

const httpServer = http.createServer()
const io = new Server(httpServer, {
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  ...(process.env.SIO_PARSER === 'msgpack' && { parser: msgpackParser })
})
if (process.env.REDIS_PORT !== undefined) {
  const pub = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT) })
  const sub = pub.duplicate()
  await Promise.all([pub, sub].map(async (c) => { await new Promise((resolve) => { c.once('ready', resolve) }) }))
  io.adapter(createAdapter(pub, sub))
}
io.on('connection', (socket) => {
  socket.on('echo', (text: string, ack?: (reply: string) => void) => { ack?.(text) })
  socket.on('broadcastEcho', (text: string) => { io.emit('receive', text) })
})
httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const a = httpServer.address()
  console.log(`listening http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`)
})
function stop (): void {
  setTimeout(() => { process.exit(0) }, 2000).unref()
  void io.close(() => { process.exit(0) })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
