import type { Clock, TimerHandle } from '@mephisto/core'

interface Timer extends TimerHandle {
  at: number
  seq: number
  fn: () => void
}

/**
 * A clock that moves only when told. Timers fire in due order (ties in the order they were
 * set) as the testkit advances it.
 */
export class FakeClock implements Clock {
  private current: number
  private timers = new Map<number, Timer>()
  private seq = 0

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq
    const t: Timer = { id, at: this.current + Math.max(0, ms), seq: id, fn }
    this.timers.set(id, t)
    return t
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id)
  }

  /** The earliest pending timer's due time, if any. */
  nextDue(): number | undefined {
    let min: number | undefined
    for (const t of this.timers.values()) if (min === undefined || t.at < min) min = t.at
    return min
  }

  /** Fires every timer due at or before `until`, earliest first; sets now to each one's time. */
  fireNext(until: number): boolean {
    let next: Timer | undefined
    for (const t of this.timers.values()) {
      if (t.at > until) continue
      if (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq)) next = t
    }
    if (!next) return false
    this.timers.delete(next.id)
    if (next.at > this.current) this.current = next.at
    next.fn()
    return true
  }

  /** Moves time without firing anything (the testkit fires timers first). */
  set(time: number): void {
    if (time > this.current) this.current = time
  }

  get pending(): number {
    return this.timers.size
  }
}
