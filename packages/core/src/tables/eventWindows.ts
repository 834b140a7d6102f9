/**
 * What the views whose windows the events themselves define (session and sliding windows) share:
 * stream time and the close pass around it, one lock per key so that an event's write and the
 * close pass never interleave on a key (both read a key's index record and write it back), when to
 * ask for a pass, late writes, and reads as windows. Where the windows are is each view's.
 */
import { KeyedLock } from '../base/keyedLock.js'
import type { TableState } from './tableState.js'
import type { Window, WindowedSource, WindowSettings } from './windowed.js'
import type { WindowIndex } from './windowIndex.js'
import type { WindowTime } from './windowTime.js'
import type { Relative, WindowView } from './windowView.js'
import { lateEventError, relativeTime } from './windowView.js'

/** Shared by a view and the views its `relativeTo*()` make: one lock, one schedule, one worker hook. */
export interface ViewRuntime {
  closeSoon: (() => void) | undefined
  readonly locks: KeyedLock<string>
  /**
   * Per worker (its table state) and partition: the stream time at which the earliest open window
   * closes, so that a write asks for a close pass exactly when one is due. Unknown (a new worker):
   * the first write asks for a pass, which learns it.
   */
  readonly due: WeakMap<object, Map<number, number>>
}

export function viewRuntime(): ViewRuntime {
  return { closeSoon: undefined, locks: new KeyedLock(), due: new WeakMap() }
}

/** What a write puts in a window: the value it had (or the default) in, the new one out. */
export type Apply<V> = (current: V) => V | Promise<V>

/** A window closing, and the promise of its `onWindowClose` (wrapped: a lock must not wait for it). */
export type Report = { done: void | Promise<void> } | undefined

export abstract class EventWindowedTable<K, V, R> implements WindowView {
  /** @internal */
  constructor(
    /** @internal */ readonly table: WindowedSource<K, V>,
    /** @internal Resolved options. */ readonly settings: WindowSettings,
    /** @internal The stream time of the table's partitions. */ readonly time: WindowTime,
    protected readonly index: WindowIndex<R>,
    protected readonly runtime: ViewRuntime,
    protected readonly relative: Relative,
  ) {}

  abstract describe(): string
  abstract readonly closeEveryMs: number

  /** @internal Asks for a close pass soon (set by the worker running it). */
  get closeSoon(): (() => void) | undefined {
    return this.runtime.closeSoon
  }

  set closeSoon(fn: (() => void) | undefined) {
    this.runtime.closeSoon = fn
  }

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

  /** The stream time of a partition (the latest event time its windows have seen), or null. */
  streamTime(partition: number): number | null {
    return this.time.get(partition).streamTime
  }

  /**
   * Every window of every key in the partitions this worker owns (or in one partition), as
   * `[key, window, value]`, open windows only.
   */
  abstract entries(options?: { partition?: number }): AsyncIterable<[K, Window, V]>

  /** The open windows of `key`, oldest first. */
  abstract items(key: K): Promise<[Window, V][]>

  /** Every key with a value in `window` (same start and end), in the partitions this worker owns. */
  async keysIn(window: Window): Promise<[K, V][]> {
    const out: [K, V][] = []
    for await (const [key, w, v] of this.entries())
      if (w.start === window.start && w.end === window.end) out.push([key, v])
    return out
  }

  /**
   * @internal The close pass: per owned partition, moves the close mark to stream time (or, idle,
   * to the clock) before anything else, so no write lands in what it closes, then closes and
   * reports, oldest first. Run by the worker's jobs, on a timer and when a window is due.
   */
  async expire(): Promise<number> {
    const state = this.state()
    let closed = 0
    for (const partition of state.ownedPartitions()) {
      const horizon = this.time.horizon(partition, state.clock)
      if (horizon === undefined) continue
      this.time.closed(partition, horizon)
      this.dueOf(state).set(partition, Number.POSITIVE_INFINITY)
      closed += await this.closePartition(state, partition, horizon)
    }
    return closed
  }

  /** Closes what `horizon` has closed in one partition; returns how many windows it reported. */
  protected abstract closePartition(
    state: TableState<K, V>,
    partition: number,
    horizon: number,
  ): Promise<number>

  /** The same view with another way to tell an event's time. */
  protected abstract with(relative: Relative): this

  /** `fn` alone for the key stored as `sk` in `partition`. */
  protected locked<T>(partition: number, sk: string, fn: () => Promise<T>): Promise<T> {
    return this.runtime.locks.run(`${partition}\u0000${sk}`, fn)
  }

  /** Moves the partition's stream time to a write's time; asks for a close pass when one is due. */
  protected advance(state: TableState<K, V>, partition: number, time: number): void {
    const streamTime = this.time.advance(partition, time, state.clock)
    if (streamTime >= (this.dueOf(state).get(partition) ?? Number.NEGATIVE_INFINITY)) this.closeSoon?.()
  }

  /** A window of `partition` that closes when stream time reaches `closesAt` is open. */
  protected due(state: TableState<K, V>, partition: number, closesAt: number): void {
    const due = this.dueOf(state)
    const now = due.get(partition)
    if (now === undefined || closesAt < now) due.set(partition, closesAt)
  }

  /** A write whose windows have closed: counted, and per `lateEvents` dropped or thrown. */
  protected late(state: TableState<K, V>, key: K, time: number, partition: number): false {
    state.sensors.onLateEvent(this.table.name)
    if (this.settings.lateEvents === 'deadLetter') {
      const mark = this.time.lateMark(partition)
      throw lateEventError(this.table.name, key, time, partition, mark, this.settings.graceMs)
    }
    return false
  }

  /** Calls `onWindowClose` now (so no commit falls between the removal and the call). */
  protected report(sk: string, window: Window, value: V): Report {
    const onClose = this.table.options.onWindowClose
    return { done: onClose?.(this.table.keyFromStorage(sk), window, value) }
  }

  protected relativeTime(): number {
    return relativeTime(this.relative, this.state().clock)
  }

  /** Inside an event: the event's partition (tables shard like their source); outside: the key's hash. */
  protected partition(key: K): number {
    return this.table.readPartition(this.table.storageKey(key), undefined)
  }

  protected state(): TableState<K, V> {
    return this.table.state()
  }

  private dueOf(state: TableState<K, V>): Map<number, number> {
    let due = this.runtime.due.get(state)
    if (!due) this.runtime.due.set(state, (due = new Map()))
    return due
  }
}
