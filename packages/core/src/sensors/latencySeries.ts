// A latency series: an all-time count and a bounded ring of recent samples, summarised on read.
// It keeps no clock and knows no event: callers measure and add milliseconds.
import type { LatencyStats } from './monitorSnapshot.js'

/**
 * A latency series: an all-time count and a ring of the latest samples. The ring keeps memory
 * bounded per series however long the process runs; percentiles are computed only on read.
 */
export class LatencySeries {
  count = 0
  private readonly capacity: number
  private readonly samples: number[] = []
  private next = 0

  constructor(capacity: number) {
    this.capacity = Math.max(1, Math.floor(capacity))
  }

  add(ms: number): void {
    this.count++
    if (this.samples.length < this.capacity) {
      this.samples.push(ms)
    } else {
      this.samples[this.next] = ms
      this.next = (this.next + 1) % this.capacity
    }
  }

  stats(): LatencyStats {
    const n = this.samples.length
    if (n === 0) return { count: this.count, avg: 0, p50: 0, p99: 0, max: 0 }
    const sorted = this.samples.slice().sort((a, b) => a - b)
    let sum = 0
    for (const ms of sorted) sum += ms
    // Nearest-rank percentile: always a value that was actually observed.
    const rank = (p: number): number => sorted[Math.max(0, Math.ceil(p * n) - 1)] ?? 0
    return { count: this.count, avg: sum / n, p50: rank(0.5), p99: rank(0.99), max: sorted[n - 1] ?? 0 }
  }
}
