import type { Headers, RawRecord } from '../transport/transport.js'
import type { EventQueue } from './eventQueue.js'
import type { Delivery } from './offsetTracker.js'

/**
 * One message as an agent sees it: decoded key and value plus where it came from.
 * `ack()` marks it processed; the stream does that for you when you ask for the next
 * event, unless the stream is `noAck()`.
 */
export class StreamEvent<V = unknown, K = unknown> {
  /** @internal */ acked = false
  /** @internal Exactly-once: handed to an actor and not yet acked (the commit waits for these). */
  handedOut = false
  /** @internal Exactly-once: the commit generation it was handed out in (see Transactions). */
  handedOutIn = 0
  /** @internal The event as delivered (before any `map`): what retries and dead letters use. */
  root: StreamEvent<any, any> = this
  /** @internal The queue it was delivered to, so a retry goes back there. */
  origin: EventQueue<StreamEvent<any, any>> | undefined
  /** @internal The bytes as the broker held them (absent for channel events). */
  raw: RawRecord | undefined
  /** @internal The agent it was handed to and the sensors' state for it (event runtime). */
  stream: string | undefined
  sensorState: unknown
  /** The timestamp, or undefined while it is still only in {@link raw} (read on first use). */
  private ts: number | undefined
  constructor(
    readonly key: K,
    readonly value: V,
    readonly headers: Headers,
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    /** Undefined: take it from `raw` when first asked (a broker's record converts it lazily). */
    timestamp: number | undefined,
    /** @internal */ readonly delivery: Delivery | undefined,
    /** @internal */ readonly onAck: ((e: StreamEvent<any, any>) => void) | undefined,
    raw?: RawRecord,
  ) {
    this.ts = timestamp
    this.raw = raw
  }

  /** Milliseconds since the epoch (the record's CreateTime). */
  get timestamp(): number {
    this.ts ??= this.raw!.timestamp
    return this.ts
  }

  /** Marks the event processed. Idempotent. */
  ack(): void {
    if (this.acked) return
    this.acked = true
    this.onAck?.(this)
  }

  /** The same event (same ack) carrying another value: what `map` hands on. */
  withValue<U>(value: U): StreamEvent<U, K> {
    // The copy shares the original's ack: acking either acks the delivery once.
    const copy = new StreamEvent<U, K>(
      this.key,
      value,
      this.headers,
      this.topic,
      this.partition,
      this.offset,
      this.timestamp,
      this.delivery,
      () => this.ack(),
    )
    copy.root = this.root
    return copy
  }

  /** A header as a UTF-8 string. */
  header(name: string): string | undefined {
    return this.headers[name]?.toString('utf8')
  }
}
