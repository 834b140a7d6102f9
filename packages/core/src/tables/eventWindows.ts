/**
 * What the views whose windows the events themselves define (session and sliding windows) share:
 * stream time and the close pass around it, one lock per key so that an event's write and the
 * close pass never interleave on a key (both read a key's index record and write it back), when to
 * ask for a pass, and a key's windows as its index record lists them. Where the windows are is
 * each view's; what every windowed view shares is in windowView.ts.
 */
import { ConfigurationError } from '../base/errors.js'
import { KeyedLock } from '../base/keyedLock.js'
import type { TableState } from './tableState.js'
import type { WindowIndex } from './windowIndex.js'
import type { WindowTime } from './windowTime.js'
import type { Relative, Window, WindowedSource, WindowSettings, WindowView } from './windowView.js'
import { BaseWindowedTable } from './windowView.js'

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

/** Refuses a view's length (a session gap, a sliding window size) that is not a positive integer (ms). */
export function checkLength(table: string, what: string, ms: number): void {
  if (!(ms > 0) || !Number.isInteger(ms))
    throw new ConfigurationError(`table ${table}: ${what} must be a positive integer (ms)`)
}

/** What a write puts in a window: the value it had (or the default) in, the new one out. */
export type Apply<V> = (current: V) => V | Promise<V>

/** A window closing, and the promise of its `onWindowClose` (wrapped: a lock must not wait for it). */
export type Report = { done: void | Promise<void> } | undefined

/** A write as the lock of its key runs it: where, when, and what it applies. */
export interface Write<K, V, R> {
  state: TableState<K, V>
  partition: number
  key: K
  sk: string
  /** The write's time (the relative time). */
  time: number
  /** The partition's late mark when the lock was taken. */
  mark: number
  /** The key's index record then. */
  record: R | undefined
  apply: Apply<V>
}

export abstract class EventWindowedTable<K, V, R> extends BaseWindowedTable<K, V> implements WindowView {
  /** @internal */
  constructor(
    table: WindowedSource<K, V>,
    settings: WindowSettings,
    time: WindowTime,
    protected readonly index: WindowIndex<R>,
    protected readonly runtime: ViewRuntime,
    relative: Relative,
  ) {
    super(table, settings, time, relative)
  }

  abstract describe(): string
  abstract readonly closeEveryMs: number

  /** @internal Asks for a close pass soon (set by the worker running it). */
  get closeSoon(): (() => void) | undefined {
    return this.runtime.closeSoon
  }

  set closeSoon(fn: (() => void) | undefined) {
    this.runtime.closeSoon = fn
  }

  /**
   * Sets `value` in the key's windows at the relative time: the session it falls in (merging the
   * sessions it touches first), or every sliding window holding it. False when they have closed
   * (a late event).
   */
  set(key: K, value: V): Promise<boolean> {
    return this.write(key, () => value)
  }

  /**
   * Applies `fn` to the value of the same windows as {@link set}: a new session starts from the
   * default, sessions the time touches are merged first; a new sliding window starts from the
   * window holding the same earlier events. False when late.
   */
  update(key: K, fn: Apply<V>): Promise<boolean> {
    return this.write(key, fn)
  }

  /** The open windows of `key`, oldest first. */
  async items(key: K): Promise<[Window, V][]> {
    const state = this.state()
    const partition = this.partition(key)
    const sk = this.table.storageKey(key)
    const record = await this.index.read(partition, sk)
    const out: [Window, V][] = []
    for (const { window, wk } of record ? this.windowsIn(sk, record) : []) {
      const v = await state.read(partition, wk)
      if (v !== undefined) out.push([window, v])
    }
    return out
  }

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

  /** Applies a write to the key's windows, under the key's lock. False when late. */
  protected abstract place(write: Write<K, V, R>): Promise<boolean>

  /** The windows of the key stored as `sk` that its index record lists, oldest first, with their storage keys. */
  protected abstract windowsIn(sk: string, record: R): { window: Window; wk: string }[]

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

  /**
   * Reports `closing` in order, each closed by `close` under its key's lock, and waits for each
   * report's `onWindowClose` outside the lock. Returns how many it reported.
   */
  protected async reportEach<C extends { sk: string }>(
    partition: number,
    closing: readonly C[],
    close: (c: C) => Promise<Report>,
  ): Promise<number> {
    let closed = 0
    for (const c of closing) {
      const report = await this.locked(partition, c.sk, () => close(c))
      if (!report) continue
      closed++
      await report.done
    }
    return closed
  }

  /** Calls `onWindowClose` now (so no commit falls between the removal and the call). */
  protected report(sk: string, window: Window, value: V): Report {
    const onClose = this.table.options.onWindowClose
    return { done: onClose?.(this.table.keyFromStorage(sk), window, value) }
  }

  /** A write of `key` at the relative time: moves stream time, then places it under the key's lock. */
  private write(key: K, apply: Apply<V>): Promise<boolean> {
    const state = this.state()
    const partition = this.partition(key)
    const time = this.relativeTime()
    const sk = this.table.storageKey(key)
    this.advance(state, partition, time)
    return this.locked(partition, sk, async () =>
      this.place({
        state,
        partition,
        key,
        sk,
        time,
        mark: this.time.lateMark(partition),
        record: await this.index.read(partition, sk),
        apply,
      }),
    )
  }

  private dueOf(state: TableState<K, V>): Map<number, number> {
    let due = this.runtime.due.get(state)
    if (!due) this.runtime.due.set(state, (due = new Map()))
    return due
  }
}
