/**
 * Tumbling and hopping windows: windows of a fixed size starting every step, the same for every
 * key, so a write's windows follow from its time alone. Also the options every windowed view
 * takes ({@link WindowOptions}) and their defaults.
 */
import { ConfigurationError } from '../base/errors.js'
import type { TableState } from './tableState.js'
import { parseWindowKey, windowKey, windowPrefix } from './windowKeys.js'
import type { WindowTime } from './windowTime.js'
import type {
  LateEventPolicy,
  Relative,
  Window,
  WindowedSource,
  WindowSettings,
  WindowView,
} from './windowView.js'
import { BaseWindowedTable, closeEvery, duration } from './windowView.js'

// index.ts exports the two from here.
export type { LateEventPolicy, Window } from './windowView.js'

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
 * A windowed view of a table: each key has one value per time window. Windows are assigned by
 * event time (the event's timestamp) unless the view is `relativeToNow()` or
 * `relativeToField(fn)`, and close by **stream time**: the latest event time seen in their
 * partition (see {@link WindowOptions.graceMs}), so a replay gives the windows of the live run.
 * A partition idle for `idleMs` (app clock) closes its windows by the clock.
 *
 * Late events: a write to a window that has closed is not applied (it would resurrect a window
 * that `onWindowClose` already reported); see {@link WindowOptions.lateEvents}.
 */
export class WindowedTable<K, V> extends BaseWindowedTable<K, V> implements WindowView {
  /** @internal Asks for a close pass soon (set by the worker running it; none outside one). */
  closeSoon: (() => void) | undefined

  /** @internal */
  constructor(
    table: WindowedSource<K, V>,
    readonly sizeMs: number,
    readonly stepMs: number,
    settings: WindowSettings,
    time: WindowTime,
    relative: Relative = { kind: 'stream' },
  ) {
    super(table, settings, time, relative)
    if (!(sizeMs > 0) || !(stepMs > 0) || !Number.isInteger(sizeMs) || !Number.isInteger(stepMs)) {
      throw new ConfigurationError(`table ${table.name}: window size and step must be positive integers (ms)`)
    }
    if (stepMs > sizeMs)
      throw new ConfigurationError(`table ${table.name}: a hopping step cannot exceed the size`)
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

  protected windowOf(wk: string): { sk: string; window: Window } | undefined {
    const parsed = parseWindowKey(wk)
    return parsed && { sk: parsed.sk, window: this.window(parsed.start) }
  }

  protected async read(key: K, time: number): Promise<V> {
    const state = this.state()
    const windows = this.windowsAt(time)
    const latest = windows[windows.length - 1]
    if (!latest) return this.table.defaultValue()
    const v = await state.read(this.partition(key), windowKey(this.table.storageKey(key), latest.start))
    return v === undefined ? this.table.defaultValue() : v
  }

  protected with(relative: Relative): this {
    // Same windows, same storage, same stream time, another way to tell an event's time: only the
    // view made by tumbling()/hopping() is registered for closing.
    const view = new WindowedTable(this.table, this.sizeMs, this.stepMs, this.settings, this.time, relative)
    Object.defineProperty(view, 'closeSoon', { get: () => this.closeSoon })
    return view as this
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

  private window(start: number): Window {
    return { start, end: start + this.sizeMs }
  }
}
