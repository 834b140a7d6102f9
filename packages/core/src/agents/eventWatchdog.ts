/**
 * Watches how long each actor of an agent has held the event it is processing: the age of the
 * oldest event in progress (the web's `/agents` and `/health`), and, when the agent bounds an
 * event's runtime (`eventTimeoutMs`), the actor that passes it. It costs nothing per event: each
 * tick samples every actor's event and ages it from the tick that first saw it there, so an age
 * is precise to a tick. What happens to a timed-out actor is the agent runtime's business.
 */
import type { ActorContext } from '../streams/context.js'
import type { StreamEvent } from '../streams/event.js'

/** Ticks when no timeout asks for a finer one. */
const DEFAULT_TICK_MS = 1000

export class EventWatchdog {
  private readonly seen = new WeakMap<ActorContext, { event: StreamEvent<any, any>; since: number }>()
  private timer: NodeJS.Timeout | undefined
  private readonly tickMs: number

  constructor(
    /** The actors to watch, read at every tick. */
    private readonly contexts: () => Iterable<ActorContext>,
    private readonly timeoutMs: number | undefined,
    private readonly onTimeout: (context: ActorContext, ageMs: number) => void,
  ) {
    this.tickMs =
      timeoutMs === undefined
        ? DEFAULT_TICK_MS
        : Math.max(5, Math.min(DEFAULT_TICK_MS, Math.floor(timeoutMs / 4)))
  }

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.tickMs)
    this.timer.unref?.()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Milliseconds the oldest event in progress has been in an actor's hands (0: none). */
  oldestAgeMs(now: number = performance.now()): number {
    let oldest = 0
    for (const context of this.contexts()) {
      const s = this.seen.get(context)
      const event = context.held[0]
      if (event !== undefined && s?.event === event) oldest = Math.max(oldest, now - s.since)
    }
    return Math.round(oldest)
  }

  private check(): void {
    const now = performance.now()
    for (const context of this.contexts()) {
      // In progress: handed out and not acked (an actor waiting for its next event holds none).
      const event = context.held[0]
      if (event === undefined || context.abandoned) {
        this.seen.delete(context)
        continue
      }
      const s = this.seen.get(context)
      if (s?.event !== event) {
        this.seen.set(context, { event, since: now })
        continue
      }
      if (this.timeoutMs !== undefined && now - s.since >= this.timeoutMs)
        this.onTimeout(context, now - s.since)
    }
  }
}
