/**
 * A bounded FIFO between the consumer and an agent's actors. `push` waits while the queue is
 * full (backpressure to the consumer); `take` waits while it is empty. Closing wakes everyone.
 *
 * A full queue lets its pushers go on once it has drained to half its capacity, not as soon as
 * one item was taken: otherwise a consumer faster than the actors (the usual case) would be woken
 * for every event, and each wake-up costs a promise and a resumption of the consumer's loop.
 */
export class EventQueue<T> {
  private items: T[] = []
  private head = 0
  private takers: ((item: T | null) => void)[] = []
  private putters: (() => void)[] = []
  private closed = false

  private readonly lowWater: number

  constructor(readonly capacity: number) {
    this.lowWater = Math.floor(capacity / 2)
  }

  get size(): number {
    return this.items.length - this.head
  }

  /** Actors waiting in `take` on an empty queue. */
  get waiting(): number {
    return this.takers.length
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Adds an item; the returned promise (if any) resolves when there is room again. */
  push(item: T): Promise<void> | undefined {
    if (this.closed) return undefined
    const taker = this.takers.shift()
    if (taker) {
      taker(item)
      return undefined
    }
    this.items.push(item)
    if (this.size >= this.capacity) return new Promise((resolve) => this.putters.push(resolve))
    return undefined
  }

  /** Puts an item at the front (a retried event). Never waits. */
  unshift(item: T): void {
    const taker = this.takers.shift()
    if (taker) {
      taker(item)
      return
    }
    if (this.head > 0) this.items[--this.head] = item
    else this.items.unshift(item)
  }

  /** The next item, or null once the queue is closed and empty. */
  take(): Promise<T | null> | T | null {
    if (this.head < this.items.length) {
      const item = this.items[this.head]!
      this.items[this.head++] = undefined as T
      if (this.head === this.items.length) {
        this.items = []
        this.head = 0
      } else if (this.head > 4096) {
        this.items = this.items.slice(this.head)
        this.head = 0
      }
      if (this.putters.length > 0 && this.size <= this.lowWater) this.releasePutters()
      return item
    }
    if (this.closed) return null
    return new Promise((resolve) => this.takers.push(resolve))
  }

  /** Removes the queued items matching `drop` (revoked partitions); returns them. */
  remove(drop: (item: T) => boolean): T[] {
    const kept: T[] = []
    const removed: T[] = []
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!
      if (drop(item)) removed.push(item)
      else kept.push(item)
    }
    this.items = kept
    this.head = 0
    if (this.size <= this.lowWater) this.releasePutters()
    return removed
  }

  private releasePutters(): void {
    const putters = this.putters
    this.putters = []
    for (const p of putters) p()
  }

  /** No more items: waiting takers get null, waiting pushers are released. */
  close(): void {
    this.closed = true
    for (const t of this.takers.splice(0)) t(null)
    for (const p of this.putters.splice(0)) p()
  }
}
