// The scale scenarios' probes, served by a peer under test when BENCH_STATS=1 (ours and the
// ws floor): event-loop delay since the last probe, and one broadcast to every connection
// stamped with the machine-wide monotonic clock so that load clients can time its delivery.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { nowMicros } from '../load/histogram.js'

export interface BenchStats {
  /** Answers GET /bench/loop-delay and POST /bench/broadcast; false for other paths. */
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>
}

export function benchStats (broadcast: (text: string) => Promise<void> | void): BenchStats {
  // 10 ms sampling resolution, as Node's docs suggest; the histogram is in nanoseconds
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let seq = 0
  return {
    async handle (req, res) {
      const url = req.url ?? ''
      if (url.startsWith('/bench/loop-delay')) {
        const body = { p50Ms: delay.percentile(50) / 1e6, p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6, samples: delay.count }
        delay.reset()
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
        return true
      }
      if (url.startsWith('/bench/broadcast')) {
        const sentAt = nowMicros()
        await broadcast(`${++seq}|${sentAt}|scale`)
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sentAt, queuedMicros: nowMicros() - sentAt }))
        return true
      }
      return false
    }
  }
}
