/**
 * Which offsets of one partition may be committed. Events are acked out of order (concurrent
 * actors, several agents on one topic, `noAck`); the committable offset is the highest
 * *contiguous* acked offset + 1, counted over the offsets actually delivered (compaction and
 * transaction markers leave gaps, so `offset + 1` is not "the next one").
 */
export class OffsetTracker {
  private queue: Delivery[] = []
  private head = 0
  /** Next offset to commit (-1 until something was acked). */
  committable = -1
  /** Events of this partition handed to an actor and not yet acked. */
  inFlight = 0

  /** Registers a delivered offset that `pending` consumers must each ack. */
  track(offset: number, pending: number): Delivery {
    const d: Delivery = { offset, pending, tracker: this }
    if (pending <= 0) {
      // Nothing will ack it (decode failure already dead-lettered): it only moves the mark.
      if (this.head === this.queue.length) {
        this.committable = offset + 1
        return d
      }
    }
    this.queue.push(d)
    return d
  }

  /** One consumer is done with the delivery; true when that was the last one (the message is done). */
  ack(d: Delivery): boolean {
    if (d.pending <= 0) return false
    d.pending--
    if (d.pending !== 0) return false
    this.advance()
    return true
  }

  private advance(): void {
    const q = this.queue
    let h = this.head
    while (h < q.length && q[h]!.pending <= 0) {
      this.committable = q[h]!.offset + 1
      h++
    }
    if (h === q.length) {
      this.queue = []
      this.head = 0
    } else if (h > 1024 && h * 2 > q.length) {
      this.queue = q.slice(h)
      this.head = 0
    } else {
      this.head = h
    }
  }

  /** Deliveries not yet fully acked. */
  get outstanding(): number {
    return this.queue.length - this.head
  }
}

export interface Delivery {
  readonly offset: number
  pending: number
  readonly tracker: OffsetTracker
}
