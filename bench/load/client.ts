// One load-generator process: `node --import tsx bench/load/client.ts '<ClientConfig JSON>'`,
// spawned by the runner with an IPC channel. It opens its connections, says `ready`, waits
// for `go` (times on the machine-wide monotonic clock), runs its role, sends `result` and
// exits. Every phase is bounded: a server that stops answering yields a short result, never
// a hang. It never shares an event loop with a server.
import { setImmediate as yieldNow, setTimeout as sleep } from 'node:timers/promises'
import { Histogram, nowMicros } from './histogram.js'
import { SignalRDialer } from './signalr.js'
import { SocketIoDialer } from './socketio.js'
import { withTimeout, type DialOptions, type LoadConnection } from './wire.js'
import type { ChildMessage, ClientConfig, ParentMessage, RoleResult } from './messages.js'

const config = JSON.parse(process.argv[2] ?? '{}') as ClientConfig

function send (m: ChildMessage): void {
  process.send?.(m)
}

process.on('unhandledRejection', (err) => {
  console.error('load client: unhandled rejection', err)
  process.exit(1)
})
process.on('disconnect', () => { process.exit(0) }) // the runner went away

const dial: DialOptions = {
  family: config.family,
  transport: config.transport,
  protocol: config.protocol,
  httpBase: config.httpBase,
  hubPath: config.hubPath,
  localAddress: config.localAddress,
  timeoutMs: config.connectTimeoutMs
}
const sockets = Math.max(16, config.connections * 2 + config.concurrency * 2 + 8)
const dialer = config.family === 'signalr' ? new SignalRDialer(dial, sockets) : new SocketIoDialer(dial, sockets)

const errors: string[] = []
let errorCount = 0
function noteError (err: unknown): void {
  errorCount++
  if (errors.length < 5) errors.push(String((err as Error)?.message ?? err))
}

let parentHandler: ((m: ParentMessage) => void) | undefined
process.on('message', (m: ParentMessage) => { parentHandler?.(m) })
function next<T extends ParentMessage['type']> (type: T): Promise<Extract<ParentMessage, { type: T }>> {
  return new Promise((resolve) => {
    const prev = parentHandler
    parentHandler = (m) => {
      if (m.type === type) {
        parentHandler = prev
        resolve(m as Extract<ParentMessage, { type: T }>)
      } else prev?.(m)
    }
  })
}

/** Opens `count` connections, `concurrency` at a time, within connectPhaseMs overall. */
async function openAll (count: number): Promise<LoadConnection[]> {
  const out: LoadConnection[] = []
  const deadline = Date.now() + config.connectPhaseMs
  let started = 0
  async function worker (): Promise<void> {
    while (started < count && Date.now() < deadline) {
      started++
      try {
        out.push(await dialer.connect())
      } catch (err) {
        noteError(err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(config.concurrency, count) }, worker))
  return out
}

function payload (size: number): string {
  const base = 'fastify-signalr bench payload 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ '
  return base.repeat(Math.ceil(size / base.length)).slice(0, size)
}

async function closeAll (conns: LoadConnection[]): Promise<void> {
  // Bounded: half a second per batch at most, whatever the server does
  await withTimeout(Promise.allSettled(conns.map((c) => c.close())), 3000, 'closing').catch(() => {})
}

async function finish (result: RoleResult, conns: LoadConnection[]): Promise<never> {
  send({ type: 'result', result: { ...result, errors, errorCount } })
  await closeAll(conns)
  dialer.destroy()
  // Let the IPC message flush before leaving
  await sleep(50)
  process.exit(0)
}

/** Echo in a closed loop on every connection. */
async function echo (): Promise<void> {
  const conns = await openAll(config.connections)
  send({ type: 'ready', connected: conns.length, failed: config.connections - conns.length })
  const { measureFrom, endAt } = await next('go')
  const hist = new Histogram()
  const text = payload(config.payloadBytes)
  let count = 0
  let wrong = 0
  await sleepUntil(measureFrom - config.warmupMs * 1000)
  const loops = conns.map(async (c) => {
    while (!c.closed) {
      const t0 = nowMicros()
      if (t0 >= endAt) return
      let reply: string
      try {
        reply = await c.echo(text)
      } catch (err) {
        noteError(err)
        return
      }
      const t1 = nowMicros()
      if (reply !== text) wrong++
      if (t0 >= measureFrom && t1 <= endAt) {
        count++
        hist.record(t1 - t0)
      }
    }
  })
  // Loops stuck on a server that stopped answering are abandoned after the grace period
  await Promise.race([Promise.all(loops), sleepUntil(endAt + config.graceMs * 1000)])
  if (wrong > 0) noteError(new Error(`${wrong} echo replies did not match`))
  await finish({ count, windowMicros: endAt - measureFrom, hist: hist.toJSON() }, conns)
}

/** Broadcast receivers: count deliveries and their send→receipt latency; report progress. */
async function broadcastReceive (): Promise<void> {
  const conns = await openAll(config.connections)
  let live = conns.length
  const received = new Map<number, number>()
  let doneUpTo = 0
  let reportQueued = false
  let measureFrom = Infinity
  let endAt = -Infinity
  let count = 0
  const hist = new Histogram()
  const advance = (): void => {
    let moved = false
    while ((received.get(doneUpTo + 1) ?? 0) >= live) {
      received.delete(doneUpTo + 1)
      doneUpTo++
      moved = true
    }
    if (moved && !reportQueued) {
      reportQueued = true
      setImmediate(() => { reportQueued = false; send({ type: 'progress', doneUpTo }) })
    }
  }
  for (const c of conns) {
    c.onReceive = (text) => {
      const now = nowMicros()
      const bar = text.indexOf('|')
      const seq = Number(text.slice(0, bar))
      const sentAt = Number(text.slice(bar + 1, text.indexOf('|', bar + 1)))
      if (sentAt >= measureFrom && sentAt < endAt) {
        count++
        hist.record(now - sentAt)
      }
      received.set(seq, (received.get(seq) ?? 0) + 1)
      if (seq === doneUpTo + 1) advance()
    }
    c.onClose = (err) => {
      noteError(err)
      live--
      advance()
    }
  }
  send({ type: 'ready', connected: conns.length, failed: config.connections - conns.length })
  const go = await next('go')
  measureFrom = go.measureFrom
  endAt = go.endAt
  await sleepUntil(endAt + config.graceMs * 1000)
  await finish({ count, windowMicros: endAt - measureFrom, hist: hist.toJSON() }, conns)
}

/**
 * The one sender: BroadcastEcho as fast as the receivers keep up, with at most `window`
 * broadcasts not yet received everywhere (the runner relays the slowest receiver's progress).
 */
async function broadcastSend (): Promise<void> {
  const conns = await openAll(1)
  send({ type: 'ready', connected: conns.length, failed: 1 - conns.length })
  const { measureFrom, endAt } = await next('go')
  const c = conns[0]
  let confirmed = 0
  let wake: (() => void) | undefined
  parentHandler = (m) => {
    if (m.type === 'progress') {
      confirmed = m.doneUpTo
      wake?.()
    }
  }
  const pad = payload(config.payloadBytes)
  let seq = 0
  let stalls = 0
  await sleepUntil(measureFrom - config.warmupMs * 1000)
  while (c?.closed === false && nowMicros() < endAt) {
    if (seq - confirmed >= config.window) {
      const moved = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => { wake = undefined; resolve(false) }, 1000)
        wake = () => { clearTimeout(t); wake = undefined; resolve(true) }
      })
      // A receiver lost for good must not stop the run: move on after a second
      if (!moved) {
        stalls++
        confirmed = seq - config.window + 1
      }
      continue
    }
    seq++
    const head = `${seq}|${nowMicros()}|`
    c.broadcast(head + pad.slice(head.length))
    // Let incoming broadcasts and progress reports in now and then
    if ((seq & 7) === 0) await yieldNow()
  }
  await sleepUntil(endAt + config.graceMs * 1000)
  await finish({ count: seq, windowMicros: endAt - measureFrom, stalls }, conns)
}

/**
 * Idle connections held until the runner has measured the server. Broadcasts that reach
 * them (`seq|sentAtMicros|…`, the scale scenario's one broadcast) are timed: the histogram's
 * max is the time until the last connection had it.
 */
async function idle (): Promise<void> {
  const from = nowMicros()
  const conns = await openAll(config.connections)
  const to = nowMicros()
  let dropped = 0
  const hist = new Histogram()
  for (const c of conns) {
    c.onClose = () => { dropped++ }
    c.onReceive = (text) => {
      const bar = text.indexOf('|')
      hist.record(nowMicros() - Number(text.slice(bar + 1, text.indexOf('|', bar + 1))))
    }
  }
  send({ type: 'ready', connected: conns.length, failed: config.connections - conns.length, connectSpan: [from, to] })
  const stop = await next('stop')
  if (dropped > 0 && stop.serverClosed !== true) noteError(new Error(`${dropped} idle connections were closed by the server`))
  await finish({ count: conns.length - (stop.serverClosed === true ? 0 : dropped), windowMicros: 0, hist: hist.toJSON() }, conns)
}

/** negotiate + WebSocket + handshake, then close; `concurrency` such cycles at once. */
async function connectRate (): Promise<void> {
  send({ type: 'ready', connected: 0, failed: 0 })
  const { measureFrom, endAt } = await next('go')
  const hist = new Histogram()
  let count = 0
  await sleepUntil(measureFrom - config.warmupMs * 1000)
  const loops = Array.from({ length: config.concurrency }, async () => {
    while (nowMicros() < endAt) {
      const t0 = nowMicros()
      let c: LoadConnection
      try {
        c = await dialer.connect()
      } catch (err) {
        noteError(err)
        await sleep(10)
        continue
      }
      const t1 = nowMicros()
      if (t0 >= measureFrom && t1 <= endAt) {
        count++
        hist.record(t1 - t0)
      }
      await c.close()
    }
  })
  await Promise.race([Promise.all(loops), sleepUntil(endAt + config.graceMs * 1000)])
  await finish({ count, windowMicros: endAt - measureFrom, hist: hist.toJSON() }, [])
}

async function sleepUntil (micros: number): Promise<void> {
  const ms = (micros - nowMicros()) / 1000
  if (ms > 0) await sleep(ms)
}

const roles: Record<ClientConfig['role'], () => Promise<void>> = {
  echo,
  'broadcast-receive': broadcastReceive,
  'broadcast-send': broadcastSend,
  idle,
  connect: connectRate
}
await roles[config.role]()
