// What one idle WebSocket connection keeps on the server's JS heap, by kind of object.
//
//   node --import tsx bench/heap.ts [--peer=ours|ws] [--connections=2000] [--keep]
//
// Starts the peer's bench server (as the scale scenarios do: keep-alive 2 s) with
// --heapsnapshot-signal, writes one heap snapshot before and one after opening the idle
// JSON connections from this process, and prints the objects that grew by about one (or
// more) per connection: count per connection and bytes per connection (V8 self sizes), by
// constructor or closure name (compiled code left out). The total is the JS heap's share of the RSS per connection
// that the scale scenarios report; the rest is native (sockets, libuv, buffers outside the heap).
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { FD_HEADROOM, PEERS, ROOT, startServer, type PeerId } from './harness.js'
import { SignalRDialer } from './load/signalr.js'
import type { LoadConnection } from './load/wire.js'

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
  nodes: number[]
  strings: string[]
}

/** count and self size by "type name", over the whole heap. */
function tally (file: string): Map<string, { count: number, bytes: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0]
  const width = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const out = new Map<string, { count: number, bytes: number }>()
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]]
    let name = s.strings[s.nodes[i + iName]]
    // Strings and numbers are named by their content: one bucket each
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'regexp') name = ''
    else if (name.length > 60) name = `${name.slice(0, 57)}...`
    const key = `${type} ${name}`
    const t = out.get(key) ?? { count: 0, bytes: 0 }
    t.count++
    t.bytes += s.nodes[i + iSize]
    out.set(key, t)
  }
  return out
}

async function snapshot (pid: number, label: string): Promise<string> {
  const before = new Set(readdirSync(ROOT).filter((f) => f.endsWith('.heapsnapshot')))
  process.kill(pid, 'SIGUSR2')
  const end = Date.now() + 120_000
  while (Date.now() < end) {
    await sleep(500)
    const fresh = readdirSync(ROOT).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f))
    if (fresh.length > 0) {
      // Written once it is a whole JSON document (the file appears before the heap is walked)
      const path = `${ROOT}${fresh[0]}`
      for (;;) {
        const text = readFileSync(path, 'latin1').trimEnd()
        if (text.endsWith(']}')) {
          console.error(`${label}: ${fresh[0]} (${(text.length / 1e6).toFixed(1)} MB)`)
          return path
        }
        await sleep(500)
      }
    }
  }
  throw new Error(`no heap snapshot within 120 s (${label})`)
}

const arg = (name: string, fallback: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const peerId = arg('peer', 'ours') as PeerId
const n = Number(arg('connections', '2000'))
const peer = PEERS.find((p) => p.id === peerId)
if (peer === undefined) throw new Error(`unknown peer ${peerId}`)

const server = await startServer(peer, { nodeArgs: ['--heapsnapshot-signal=SIGUSR2'], env: { KEEPALIVE_MS: '2000' }, fds: n + FD_HEADROOM })
const connections: LoadConnection[] = []
const files: string[] = []
try {
  const dialer = new SignalRDialer({ family: 'signalr', transport: 'ws', protocol: 'json', httpBase: server.httpBase, hubPath: '/hubs/scenario', localAddress: undefined, timeoutMs: 30_000 }, 64)
  // One connection first, so that what the first connection initialises once is in both snapshots
  connections.push(await dialer.connect())
  await sleep(3000)
  files.push(await snapshot(server.pid, 'before'))
  for (let i = 1; i <= n; i += 64) {
    const batch = Math.min(64, n + 1 - i)
    connections.push(...await Promise.all(Array.from({ length: batch }, async () => await dialer.connect())))
  }
  // Two keep-alive intervals, so that every connection has pinged and been pinged
  await sleep(5000)
  files.push(await snapshot(server.pid, 'after'))
  const a = tally(files[0])
  const b = tally(files[1])
  const rows: Array<[string, number, number]> = []
  let total = 0
  for (const [key, t] of b) {
    // Compiled code grows with whatever ran in between, not with the connections
    if (key.startsWith('code ')) continue
    const was = a.get(key) ?? { count: 0, bytes: 0 }
    const dBytes = t.bytes - was.bytes
    total += dBytes
    if ((t.count - was.count) / n >= 0.9 || dBytes / n >= 16) rows.push([key, (t.count - was.count) / n, dBytes / n])
  }
  rows.sort((x, y) => y[2] - x[2])
  console.log(`${peer.label}, ${n} idle JSON WebSocket connections: JS heap ${(total / n).toFixed(0)} bytes per connection (self sizes)`)
  console.log('| object | per conn | bytes/conn |\n|---|---|---|')
  for (const [key, count, bytes] of rows) console.log(`| ${key.replace(/\|/g, '\\|')} | ${count.toFixed(2)} | ${bytes.toFixed(0)} |`)
  dialer.destroy()
} finally {
  await Promise.all(connections.map(async (c) => { await c.close() }))
  await server.stop()
  if (!process.argv.includes('--keep')) for (const f of files) rmSync(f, { force: true })
}
