// Per-connection rate limit on the log lines a client can trigger again and again without
// being disconnected (an unknown method, a bad argument, a Completion for an unknown id).
// One 1 MiB message once carried 25,000 such Completions and wrote 25,000 warn lines
// (4.9 MiB): the log is a resource too. Each kind of line is written the first few times,
// then at most once per interval, carrying the count of the lines it stood for.
import type { FastifyBaseLogger } from 'fastify'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Lines of one kind written in full before the limit applies. */
export const LOG_BURST = 10
/** After the burst, at most one line of a kind per this many ms. */
export const LOG_INTERVAL_MS = 10_000

interface KindState { count: number, suppressed: number, lastAt: number }

export class LogLimiter {
  private readonly kinds = new Map<string, KindState>()

  log (logger: FastifyBaseLogger, level: LogLevel, kind: string, fields: Record<string, unknown>, message: string, now = Date.now()): void {
    let state = this.kinds.get(kind)
    if (state === undefined) {
      state = { count: 0, suppressed: 0, lastAt: 0 }
      this.kinds.set(kind, state)
    }
    if (state.count < LOG_BURST) {
      state.count++
      state.lastAt = now
      logger[level](fields, message)
      return
    }
    if (now - state.lastAt < LOG_INTERVAL_MS) {
      state.suppressed++
      return
    }
    const suppressed = state.suppressed
    state.suppressed = 0
    state.lastAt = now
    logger[level]({ ...fields, suppressed }, `${message} (${suppressed} more like it since the last line)`)
  }

  /** When the connection ends: what was held back is counted, never dropped unsaid. */
  flush (logger: FastifyBaseLogger): void {
    for (const [kind, state] of this.kinds) {
      if (state.suppressed > 0) logger.info({ kind, suppressed: state.suppressed }, 'signalr: log lines suppressed by the per-connection rate limit')
    }
    this.kinds.clear()
  }
}
