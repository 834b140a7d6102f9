/**
 * What every windowed view shares, whatever its windows (tumbling, hopping, session, sliding):
 * the close pass the worker drives ({@link WindowView}), what a view needs of its table, how it
 * tells the time of the event being processed, reads a key's value at a time and as windows, and
 * what a write to a closed window does ({@link BaseWindowedTable}). Where the windows are, and how
 * they are written and closed, is each view's.
 */
import type { Clock } from '../base/clock.js'
import { MephistoError } from '../base/errors.js'
import { actorContext } from '../streams/context.js'
import type { TableState } from './tableState.js'
import type { WindowTime } from './windowTime.js'

/** A time window: `[start, end)` in ms. */
export interface Window {
  start: number
  end: number
}

/** What a write to a window that has closed does. */
export type LateEventPolicy = 'drop' | 'deadLetter'

/** A windowed view's options with defaults applied (see `WindowOptions`). */
export interface WindowSettings {
  graceMs: number
  idleMs: number
  lateEvents: LateEventPolicy
}

/**
 * What a windowed view needs of its table. `Table` implements it; it is declared here so that
 * the views do not import the table, which creates them.
 */
export interface WindowedSource<K, V> {
  readonly name: string
  readonly options: {
    readonly onWindowClose?: (key: K, window: Window, value: V) => void | Promise<void>
  }
  /** The table's state in the running worker. */
  state(): TableState<K, V>
  /** The value `get` returns for a missing key. */
  defaultValue(): V
  storageKey(key: K): string
  keyFromStorage(storageKey: string): K
  /** The partition a read of `storageKey` goes to (the event's, or the key's hash outside one). */
  readPartition(storageKey: string, options: undefined | { partition?: number }): number
}

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

/**
 * What every windowed view of a table does the same way: the way to tell an event's time
 * (`relativeTo*()`), a key's value at a time, the table read as windows, late writes. Which
 * windows a key has, and how they are written and closed, is each view's.
 */
export abstract class BaseWindowedTable<K, V> {
  /** @internal */
  constructor(
    readonly table: WindowedSource<K, V>,
    /** @internal Resolved options. */ readonly settings: WindowSettings,
    /** @internal The stream time of the table's partitions. */ readonly time: WindowTime,
    protected readonly relative: Relative,
  ) {}

  /** How long after its end a window takes events (stream time). */
  get graceMs(): number {
    return this.settings.graceMs
  }

  /** Windows by the time of the event being processed (the default). */
  relativeToStream(): this {
    return this.with({ kind: 'stream' })
  }

  /** Windows by the app clock when the write happens. */
  relativeToNow(): this {
    return this.with({ kind: 'now' })
  }

  /** Windows by a time taken from the event's value. */
  relativeToField<T>(fn: (value: T) => number): this {
    return this.with({ kind: 'field', fn })
  }

  /**
   * The key's value at the relative time (the default when none): of the latest window holding
   * it (tumbling, hopping), of the session holding it, or over the key's events in the `sizeMs`
   * up to it (sliding).
   */
  async current(key: K): Promise<V> {
    return this.read(key, this.relativeTime())
  }

  /** The key's value at the app clock's now (as {@link current}). */
  async now(key: K): Promise<V> {
    return this.read(key, this.state().clock.now())
  }

  /** The key's value at `ms` before the relative time (as {@link current}). */
  async delta(key: K, ms: number): Promise<V> {
    return this.read(key, this.relativeTime() - ms)
  }

  /** The stream time of a partition (the latest event time its windows have seen), or null. */
  streamTime(partition: number): number | null {
    return this.time.get(partition).streamTime
  }

  /**
   * Every window of every key in the partitions this worker owns (or in one partition), as
   * `[key, window, value]`: the windowed table read as windows, not as its storage keys. Open
   * windows only.
   */
  async *entries(options?: { partition?: number }): AsyncIterable<[K, Window, V]> {
    const state = this.state()
    const parts = options?.partition !== undefined ? [options.partition] : state.ownedPartitions()
    for (const p of parts) {
      for await (const [wk, v] of state.entries(p)) {
        const stored = this.windowOf(wk)
        if (stored) yield [this.table.keyFromStorage(stored.sk), stored.window, v]
      }
    }
  }

  /** The same view with another way to tell an event's time. */
  protected abstract with(relative: Relative): this

  /** The key's value at `time` (the default when none). */
  protected abstract read(key: K, time: number): Promise<V>

  /**
   * The key (as stored) and the window of a storage key that holds one of this view's open
   * windows; undefined for any other storage key.
   */
  protected abstract windowOf(wk: string): { sk: string; window: Window } | undefined

  /** A write whose windows have closed: counted, and per `lateEvents` dropped or thrown. */
  protected late(state: TableState<K, V>, key: K, time: number, partition: number): false {
    state.sensors.onLateEvent(this.table.name)
    if (this.settings.lateEvents === 'deadLetter') {
      const mark = this.time.lateMark(partition)
      throw lateEventError(this.table.name, key, time, partition, mark, this.settings.graceMs)
    }
    return false
  }

  protected relativeTime(): number {
    return relativeTime(this.relative, this.state().clock)
  }

  /**
   * Inside an event: the event's partition (tables shard like their source); outside (timers,
   * pages, tests): the partition the key hashes to.
   */
  protected partition(key: K): number {
    return this.table.readPartition(this.table.storageKey(key), undefined)
  }

  protected state(): TableState<K, V> {
    return this.table.state()
  }
}
