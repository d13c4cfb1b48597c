// A small log-bucketed latency histogram (about 1 % precision, values in microseconds) that
// client processes fill and the runner merges; it keeps millions of samples in a few kB.
const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)

export interface HistogramJson {
  /** bucket index -> count */
  buckets: Record<string, number>
  count: number
  max: number
}

export class Histogram {
  private readonly buckets = new Map<number, number>()
  count = 0
  max = 0

  /** Records one value in microseconds (values below 1 µs count as 1 µs). */
  record (micros: number): void {
    const v = micros < 1 ? 1 : micros
    const i = Math.floor(Math.log(v) / LOG_GROWTH)
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1)
    this.count++
    if (v > this.max) this.max = v
  }

  merge (other: HistogramJson): void {
    for (const [k, n] of Object.entries(other.buckets)) {
      const i = Number(k)
      this.buckets.set(i, (this.buckets.get(i) ?? 0) + n)
    }
    this.count += other.count
    if (other.max > this.max) this.max = other.max
  }

  /** The value at quantile q (0..1), in microseconds; undefined when empty. */
  quantile (q: number): number | undefined {
    if (this.count === 0) return undefined
    const rank = Math.max(1, Math.ceil(q * this.count))
    const keys = [...this.buckets.keys()].sort((a, b) => a - b)
    let seen = 0
    for (const k of keys) {
      seen += this.buckets.get(k) as number
      // The bucket's upper bound, capped by the largest value seen
      if (seen >= rank) return Math.min(GROWTH ** (k + 1), this.max)
    }
    return this.max
  }

  toJSON (): HistogramJson {
    const buckets: Record<string, number> = {}
    for (const [k, n] of this.buckets) buckets[String(k)] = n
    return { buckets, count: this.count, max: this.max }
  }
}

/** Monotonic microseconds, the same clock in every process of the machine (CLOCK_MONOTONIC). */
export function nowMicros (): number {
  // Nanoseconds since boot stay far below 2^53, so the Number conversion is exact
  return Number(process.hrtime.bigint()) / 1000
}
