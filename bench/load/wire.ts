// What every scenario needs from one client connection, whatever the server speaks.
import WebSocket from 'ws'

export type Family = 'signalr' | 'socketio'
export type Transport = 'ws' | 'lp'
export type Protocol = 'json' | 'messagepack'

export interface LoadConnection {
  /** One round trip: Echo(text) with a result (SignalR) or an emit with an ack (Socket.IO). */
  echo: (text: string) => Promise<string>
  /** Fire and forget: BroadcastEcho(text) / emit('broadcastEcho', text); everyone gets Receive(text). */
  broadcast: (text: string) => void
  /** Called with the text of every broadcast this connection receives. */
  onReceive: ((text: string) => void) | undefined
  /** Called once if the connection ends while in use. */
  onClose: ((error: Error) => void) | undefined
  readonly closed: boolean
  /** A polite close, bounded in time. */
  close: () => Promise<void>
}

export interface DialOptions {
  family: Family
  transport: Transport
  protocol: Protocol
  /** http://127.0.0.1:PORT */
  httpBase: string
  /** SignalR hub path, e.g. /hubs/scenario */
  hubPath: string
  /** Source address for this process's sockets (127.0.0.x), to spread ephemeral ports. */
  localAddress: string | undefined
  timeoutMs: number
}

export class Pending<T> {
  private readonly waiting = new Map<string, { resolve: (v: T) => void, reject: (e: Error) => void }>()

  add (id: string): Promise<T> {
    return new Promise<T>((resolve, reject) => { this.waiting.set(id, { resolve, reject }) })
  }

  resolve (id: string, value: T): void {
    const w = this.waiting.get(id)
    if (w === undefined) return
    this.waiting.delete(id)
    w.resolve(value)
  }

  reject (id: string, error: Error): void {
    const w = this.waiting.get(id)
    if (w === undefined) return
    this.waiting.delete(id)
    w.reject(error)
  }

  rejectAll (error: Error): void {
    for (const w of this.waiting.values()) w.reject(error)
    this.waiting.clear()
  }
}

/** A clean close, or a cut one if the server does not answer within a second. */
export async function closeWebSocket (ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return
  const done = new Promise<void>((resolve) => { ws.once('close', () => { resolve() }) })
  ws.close(1000)
  try {
    await withTimeout(done, 1000, 'close')
  } catch {
    ws.terminate()
  }
}

export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} timed out after ${ms} ms`)) }, ms) })
  return Promise.race([p, t]).finally(() => { clearTimeout(timer) })
}
