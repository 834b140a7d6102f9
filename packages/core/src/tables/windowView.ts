/**
 * What every windowed view shares, whatever its windows (tumbling, hopping, session, sliding):
 * the close pass the worker drives ({@link WindowView}), how a view tells the time of the event
 * being processed, and what a write to a closed window does. It holds no windows itself.
 */
import type { Clock } from '../base/clock.js'
import { MephistoError } from '../base/errors.js'
import { actorContext } from '../streams/context.js'

/**
 * A windowed view as the worker runs it: a close pass on a timer, and one soon when a write moves
 * stream time past a window's close. `Table.windowViews` lists them.
 */
export interface WindowView {
  /** `tumbling 1m (grace 1m)`, `session gap 30m (grace 30m)`: for listings. */
  describe(): string
  /** How often the close pass runs on the app clock (for partitions gone idle). */
  readonly closeEveryMs: number
  /** Asks for a close pass soon. Set by the worker running the view; none outside one. */
  closeSoon: (() => void) | undefined
  /** The close pass: closes and reports what stream time (or the idle clock) has closed. */
  expire(): Promise<number>
}

/** How a view tells an event's time. */
export type Relative = { kind: 'stream' } | { kind: 'now' } | { kind: 'field'; fn: (value: any) => number }

/**
 * The time that places a write: the event's timestamp (`stream`), a time read from its value
 * (`field`), or the app clock (`now`, and outside any event: timers, pages, tests).
 */
export function relativeTime(relative: Relative, clock: Clock): number {
  const event = actorContext.getStore()?.event
  if (!event || relative.kind === 'now') return clock.now()
  return relative.kind === 'field' ? relative.fn(event.value) : event.timestamp
}

/** How often a view's close pass runs on the timer: a step, the grace if shorter, at most 10 s. */
export function closeEvery(stepMs: number, graceMs: number): number {
  return Math.max(1, Math.min(stepMs, graceMs || stepMs, 10_000))
}

/** The error a write to closed windows throws under `lateEvents: 'deadLetter'` (not retriable). */
export function lateEventError(
  table: string,
  key: unknown,
  time: number,
  partition: number,
  mark: number,
  graceMs: number,
): MephistoError {
  return new MephistoError(
    'LATE_EVENT',
    `table ${table}: a write for key ${JSON.stringify(key) ?? String(key)} at ${iso(time)} is late: ` +
      `its windows closed when the stream time of partition ${partition} reached ` +
      `${iso(mark)} (graceMs ${graceMs}); lateEvents is 'deadLetter'`,
    { retriable: false },
  )
}

/** A time as ISO text, or as a number when it is no date. */
export function iso(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms)
}

/** A duration as the CLI prints it: `1h`, `30m`, `90s`, `2.5s`, `250ms`. */
export function duration(ms: number): string {
  if (ms === 0) return '0s'
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  if (ms > 1000) return `${(ms / 1000).toFixed(1)}s`
  return `${ms}ms`
}
