/**
 * When an app replaces a failed worker (a failed transaction or flush): a backoff of 0.25 s
 * doubling to 30 s, and at most 10 restarts in 5 minutes; past that the fault is not transient
 * and the app stays crashed. The restart itself is the app's; this only counts and decides.
 */

const WINDOW_MS = 5 * 60_000
const MAX_RESTARTS = 10
const FIRST_BACKOFF_MS = 250
const MAX_BACKOFF_MS = 30_000

export class RestartPolicy {
  private restarts: number[] = []

  /**
   * Counts a restart at `now`. Returns how many there were in the window, with the backoff to
   * wait before this one, or `giveUp` when there were too many.
   */
  next(now: number = Date.now()): { count: number; backoffMs: number; giveUp: boolean } {
    this.restarts = this.restarts.filter((t) => now - t < WINDOW_MS)
    this.restarts.push(now)
    const count = this.restarts.length
    return {
      count,
      backoffMs: Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (count - 1)),
      giveUp: count > MAX_RESTARTS,
    }
  }
}
