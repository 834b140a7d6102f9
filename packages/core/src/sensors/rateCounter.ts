// A per-second rate over a sliding window of one-second buckets. It reads no clock itself (callers
// pass the time) and keeps no totals: counts live in the monitor's state.

/**
 * Counts per second in a ring of one-second buckets. Adding is O(1) and allocation-free; the rate
 * is the count since the start of the oldest bucket still in the window, divided by that span.
 */
export class RateCounter {
  private readonly buckets: number
  private readonly seconds: Float64Array
  private readonly counts: Float64Array

  constructor(windowMs: number) {
    this.buckets = Math.max(1, Math.ceil(windowMs / 1000))
    this.seconds = new Float64Array(this.buckets).fill(Number.NEGATIVE_INFINITY)
    this.counts = new Float64Array(this.buckets)
  }

  add(now: number, n = 1): void {
    const second = Math.floor(now / 1000)
    const i = ((second % this.buckets) + this.buckets) % this.buckets
    if (this.seconds[i] !== second) {
      this.seconds[i] = second
      this.counts[i] = 0
    }
    this.counts[i] = (this.counts[i] ?? 0) + n
  }

  /** Per-second rate at `now`; `since` (when counting began) keeps a young counter from under-reporting. */
  rate(now: number, since: number): number {
    const current = Math.floor(now / 1000)
    const oldest = current - this.buckets + 1
    let sum = 0
    for (let i = 0; i < this.buckets; i++) {
      const second = this.seconds[i] ?? Number.NEGATIVE_INFINITY
      if (second >= oldest && second <= current) sum += this.counts[i] ?? 0
    }
    // The buckets cover [oldest second, now]; the current second is partial, so divide by the real
    // span. At least one second, so a handful of events just after start does not read as a spike.
    const span = now - Math.max(since, oldest * 1000)
    return (sum * 1000) / Math.max(1000, span)
  }

  clear(): void {
    this.seconds.fill(Number.NEGATIVE_INFINITY)
    this.counts.fill(0)
  }
}
