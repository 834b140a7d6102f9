// Which events a Monitor times: every one below a target rate, one in every n above it, n
// re-estimated from the event rate about every 100 ms. It reads no clock and times nothing itself.

/**
 * Picks the events whose runtime is timed, so that about `perSec` a second are. Reading the clock
 * twice per event cost a stateless agent about a tenth of its throughput; counting down to the next
 * timed event costs one decrement.
 */
export class EventTimingSampler {
  private readonly perSec: number
  /** Time one event in every `every`; `untilTimed` counts down to the next. */
  private every = 1
  private untilTimed = 1
  private estimatedAt: number
  private eventsSinceEstimate = 0

  /** `perSec` above 0 (`Infinity` times every event); `now` is when counting starts. */
  constructor(perSec: number, now: number) {
    this.perSec = perSec
    this.estimatedAt = now
  }

  /** Counts one event; true when it is one to time (then call {@link timed} with the clock). */
  due(): boolean {
    return --this.untilTimed <= 0
  }

  /** Takes the clock read for an event {@link due} picked, and sets how many pass until the next. */
  timed(now: number): void {
    this.eventsSinceEstimate += this.every
    const elapsed = now - this.estimatedAt
    if (elapsed >= 100) {
      const perSec = (this.eventsSinceEstimate * 1000) / elapsed
      this.every = Math.min(1000, Math.max(1, Math.floor(perSec / this.perSec)))
      this.estimatedAt = now
      this.eventsSinceEstimate = 0
    }
    this.untilTimed = this.every
  }
}
