import { ConfigurationError } from '../base/errors.js'
import type { TableState } from './tableState.js'
import { parseWindowKey, windowKey, windowPrefix } from './windowKeys.js'
import type { WindowTime } from './windowTime.js'
import type { Relative, WindowView } from './windowView.js'
import { closeEvery, duration, lateEventError, relativeTime } from './windowView.js'

/** A time window: `[start, end)` in ms. */
export interface Window {
  start: number
  end: number
}

/** What a write to a window that has closed does. */
export type LateEventPolicy = 'drop' | 'deadLetter'

export interface WindowOptions {
  /**
   * How long after its end a window still takes events, on stream time (ms). A window closes when
   * the stream time of its partition (the latest event time seen there) reaches `end + graceMs`:
   * it is removed from the table and the changelog, and `onWindowClose` fires. Default: one
   * window size.
   */
  graceMs?: number
  /** The name `graceMs` had before windows closed by stream time. Give one of the two. */
  expiresMs?: number
  /**
   * How long a partition's stream time may stand still, on the app clock, before its windows
   * close by the clock instead (a quiet partition must not hold its last windows open for ever).
   * Default: one window size plus `graceMs`.
   */
  idleMs?: number
  /**
   * A write to a window that has closed: `'drop'` (default) leaves the table as it is, counts a
   * late event in the Monitor and returns false; `'deadLetter'` throws a `LATE_EVENT` error, and
   * the event goes to its agent's dead-letter topic at once (no retries: it would be late again).
   */
  lateEvents?: LateEventPolicy
}

/** A windowed view's options with defaults applied (see {@link WindowOptions}). */
export interface WindowSettings {
  graceMs: number
  idleMs: number
  lateEvents: LateEventPolicy
}

/** Resolves and checks a windowed view's options. */
export function windowSettings(tableName: string, sizeMs: number, options: WindowOptions): WindowSettings {
  if (
    options.graceMs !== undefined &&
    options.expiresMs !== undefined &&
    options.graceMs !== options.expiresMs
  )
    throw new ConfigurationError(`table ${tableName}: give graceMs or its old name expiresMs, not both`)
  const graceMs = options.graceMs ?? options.expiresMs ?? sizeMs
  if (!(graceMs >= 0)) throw new ConfigurationError(`table ${tableName}: graceMs must be >= 0`)
  const idleMs = options.idleMs ?? sizeMs + graceMs
  if (!(idleMs > 0)) throw new ConfigurationError(`table ${tableName}: idleMs must be > 0`)
  const lateEvents = options.lateEvents ?? 'drop'
  if (lateEvents !== 'drop' && lateEvents !== 'deadLetter')
    throw new ConfigurationError(`table ${tableName}: lateEvents must be 'drop' or 'deadLetter'`)
  return { graceMs, idleMs, lateEvents }
}

/**
 * What a windowed view needs of its table. `Table` implements it; it is declared here so that
 * this file does not import the table, which creates its views.
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
 * A windowed view of a table: each key has one value per time window. Windows are assigned by
 * event time (the event's timestamp) unless the view is `relativeToNow()` or
 * `relativeToField(fn)`, and close by **stream time**: the latest event time seen in their
 * partition (see {@link WindowOptions.graceMs}), so a replay gives the windows of the live run.
 * A partition idle for `idleMs` (app clock) closes its windows by the clock.
 *
 * Late events: a write to a window that has closed is not applied (it would resurrect a window
 * that `onWindowClose` already reported); see {@link WindowOptions.lateEvents}.
 */
export class WindowedTable<K, V> implements WindowView {
  /** @internal Asks for a close pass soon (set by the worker running it; none outside one). */
  closeSoon: (() => void) | undefined

  /** @internal */
  constructor(
    readonly table: WindowedSource<K, V>,
    readonly sizeMs: number,
    readonly stepMs: number,
    /** @internal Resolved options. */
    readonly settings: WindowSettings,
    /** @internal The stream time of the table's partitions. */
    readonly time: WindowTime,
    private readonly relative: Relative = { kind: 'stream' },
  ) {
    if (!(sizeMs > 0) || !(stepMs > 0) || !Number.isInteger(sizeMs) || !Number.isInteger(stepMs)) {
      throw new ConfigurationError(`table ${table.name}: window size and step must be positive integers (ms)`)
    }
    if (stepMs > sizeMs)
      throw new ConfigurationError(`table ${table.name}: a hopping step cannot exceed the size`)
  }

  /** How long after its end a window takes events (stream time). */
  get graceMs(): number {
    return this.settings.graceMs
  }

  /** The old name of {@link graceMs}. */
  get expiresMs(): number {
    return this.settings.graceMs
  }

  describe(): string {
    const grace = `(grace ${duration(this.graceMs)})`
    return this.stepMs === this.sizeMs
      ? `tumbling ${duration(this.sizeMs)} ${grace}`
      : `hopping ${duration(this.sizeMs)} every ${duration(this.stepMs)} ${grace}`
  }

  /** @internal How often the close pass runs on the timer. */
  get closeEveryMs(): number {
    return closeEvery(this.stepMs, this.graceMs)
  }

  /** Windows by the time of the event being processed (the default). */
  relativeToStream(): WindowedTable<K, V> {
    return this.with({ kind: 'stream' })
  }

  /** Windows by the app clock when the write happens. */
  relativeToNow(): WindowedTable<K, V> {
    return this.with({ kind: 'now' })
  }

  /** Windows by a time taken from the event's value. */
  relativeToField<T>(fn: (value: T) => number): WindowedTable<K, V> {
    return this.with({ kind: 'field', fn })
  }

  /** The value of the latest window containing the relative time (default when absent). */
  async current(key: K): Promise<V> {
    return this.read(key, this.relativeTime())
  }

  /** The value of the latest window containing the app clock's now. */
  async now(key: K): Promise<V> {
    return this.read(key, this.state().clock.now())
  }

  /** The value of the latest window containing `ms` before the relative time. */
  async delta(key: K, ms: number): Promise<V> {
    return this.read(key, this.relativeTime() - ms)
  }

  /** Every window containing `time`, oldest first. */
  windowsAt(time: number): Window[] {
    const last = Math.floor(time / this.stepMs) * this.stepMs
    const out: Window[] = []
    for (let start = last - this.sizeMs + this.stepMs; start <= last; start += this.stepMs) {
      if (start + this.sizeMs > time) out.push({ start, end: start + this.sizeMs })
    }
    return out
  }

  /** Sets `value` in every window containing the relative time. False when they are all closed (late). */
  set(key: K, value: V): boolean {
    const state = this.state()
    const partition = this.partition(key)
    const time = this.relativeTime()
    const windows = this.openWindows(state, partition, time)
    if (windows.length === 0) return this.late(state, key, time, partition)
    const sk = this.table.storageKey(key)
    for (const w of windows) state.write(partition, windowKey(sk, w.start), value, key)
    return true
  }

  /** Applies `fn` to the value of every window containing the relative time. False when late. */
  async update(key: K, fn: (current: V) => V | Promise<V>): Promise<boolean> {
    const state = this.state()
    const partition = this.partition(key)
    const time = this.relativeTime()
    const windows = this.openWindows(state, partition, time)
    if (windows.length === 0) return this.late(state, key, time, partition)
    const sk = this.table.storageKey(key)
    for (const w of windows) {
      const wk = windowKey(sk, w.start)
      const current = await state.read(partition, wk)
      state.write(partition, wk, await fn(current === undefined ? this.table.defaultValue() : current), key)
    }
    return true
  }

  /** The windows stored for `key` in the partitions this worker owns, oldest first. */
  async items(key: K): Promise<[Window, V][]> {
    const state = this.state()
    const prefix = windowPrefix(this.table.storageKey(key))
    const out: [Window, V][] = []
    for await (const [wk, v] of state.entries(this.partition(key))) {
      if (!wk.startsWith(prefix)) continue
      const start = Number(wk.slice(prefix.length))
      out.push([this.window(start), v])
    }
    return out.sort((a, b) => a[0].start - b[0].start)
  }

  /**
   * Every key with a value in `window` (one of this view's windows: give its start, or any
   * window object with that start), in the partitions this worker owns, with its value.
   */
  async keysIn(window: Window | number): Promise<[K, V][]> {
    const start = typeof window === 'number' ? window : window.start
    const out: [K, V][] = []
    for await (const [key, w, v] of this.entries()) if (w.start === start) out.push([key, v])
    return out
  }

  /**
   * Every window of every key in the partitions this worker owns (or in one partition), as
   * `[key, window, value]`: the windowed table read as windows, not as its storage keys.
   */
  async *entries(options?: { partition?: number }): AsyncIterable<[K, Window, V]> {
    const state = this.state()
    const parts = options?.partition !== undefined ? [options.partition] : state.ownedPartitions()
    for (const p of parts) {
      for await (const [wk, v] of state.entries(p)) {
        const parsed = parseWindowKey(wk)
        if (parsed) yield [this.table.keyFromStorage(parsed.sk), this.window(parsed.start), v]
      }
    }
  }

  /** The stream time of a partition (the latest event time its windows have seen), or null. */
  streamTime(partition: number): number | null {
    return this.time.get(partition).streamTime
  }

  /**
   * @internal Closes every window whose `end + graceMs` the stream time (or, past `idleMs`, the
   * clock) has reached: removes it and calls `onWindowClose`, oldest first, once per window. Run
   * by the worker's jobs, on a timer and when stream time moves.
   */
  async expire(): Promise<number> {
    const state = this.state()
    const onClose = this.table.options.onWindowClose
    const grace = this.settings.graceMs
    let closed = 0
    for (const partition of state.ownedPartitions()) {
      const horizon = this.time.horizon(partition, state.clock)
      if (horizon === undefined) continue
      const closing: { wk: string; sk: string; start: number; value: V }[] = []
      for await (const [wk, value] of state.entries(partition)) {
        const parsed = parseWindowKey(wk)
        if (parsed && parsed.start + this.sizeMs + grace <= horizon) closing.push({ wk, ...parsed, value })
      }
      closing.sort((a, b) => a.start - b.start || (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0))
      for (const c of closing) {
        state.write(partition, c.wk, undefined)
        closed++
        if (onClose) await onClose(this.table.keyFromStorage(c.sk), this.window(c.start), c.value)
      }
      this.time.closed(partition, horizon)
    }
    return closed
  }

  /** Moves stream time to `time`, and the windows containing `time` that are still open. */
  private openWindows(state: TableState<K, V>, partition: number, time: number): Window[] {
    const clock = state.clock
    const before = this.time.get(partition)
    this.time.advance(partition, time, clock)
    const mark = this.time.lateMark(partition)
    // Stream time reached the close of the next window after what was closed: a pass now reports
    // it (windows close at start + size + grace, their starts multiples of the step).
    const streamTime = Math.max(time, before.streamTime ?? time)
    if (before.closedTo === null || streamTime >= this.nextClose(before.closedTo)) this.closeSoon?.()
    return this.windowsAt(time).filter((w) => w.end + this.settings.graceMs > mark)
  }

  /** The earliest stream time after `closedTo` at which a window closes. */
  private nextClose(closedTo: number): number {
    const offset = this.sizeMs + this.settings.graceMs
    return Math.floor((closedTo - offset) / this.stepMs) * this.stepMs + this.stepMs + offset
  }

  private late(state: TableState<K, V>, key: K, time: number, partition: number): false {
    state.sensors.onLateEvent(this.table.name)
    if (this.settings.lateEvents === 'deadLetter') {
      const mark = this.time.lateMark(partition)
      throw lateEventError(this.table.name, key, time, partition, mark, this.settings.graceMs)
    }
    return false
  }

  private window(start: number): Window {
    return { start, end: start + this.sizeMs }
  }

  private async read(key: K, time: number): Promise<V> {
    const state = this.state()
    const windows = this.windowsAt(time)
    const latest = windows[windows.length - 1]
    if (!latest) return this.table.defaultValue()
    const v = await state.read(this.partition(key), windowKey(this.table.storageKey(key), latest.start))
    return v === undefined ? this.table.defaultValue() : v
  }

  private relativeTime(): number {
    return relativeTime(this.relative, this.state().clock)
  }

  private partition(key: K): number {
    // Inside an event: the event's partition (tables shard like their source); outside
    // (timers, pages, tests): the partition the key hashes to.
    return this.table.readPartition(this.table.storageKey(key), undefined)
  }

  private state(): TableState<K, V> {
    return this.table.state()
  }

  private with(relative: Relative): WindowedTable<K, V> {
    // Same windows, same storage, same stream time, another way to tell an event's time: only the
    // view made by tumbling()/hopping() is registered for closing.
    const view = new WindowedTable(this.table, this.sizeMs, this.stepMs, this.settings, this.time, relative)
    Object.defineProperty(view, 'closeSoon', { get: () => this.closeSoon })
    return view
  }
}
