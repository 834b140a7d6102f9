/**
 * Sliding windows, as Kafka Streams' SlidingWindows: windows of a fixed size whose bounds the
 * events set. Two events share a window when their times differ by at most `sizeMs`; each event
 * has a window ending at it (`[t - sizeMs, t]`), and a window starting just after it while a later
 * event falls in that one. A window is stored only while it holds events, so each distinct set of
 * events within `sizeMs` has one window: what aggregation over "the last `sizeMs`" reads.
 *
 * A new window starts from the value of an existing window that holds the same events but the new
 * one (Kafka Streams does the same), so windows that have closed are kept, not reported again,
 * until no new window can start from them. The key index holds the event times this needs.
 * Windows close by stream time like every window. This file does not read a partition to find a
 * key's windows.
 */

import type { Report, ViewRuntime, Write } from './eventWindows.js'
import { checkLength, EventWindowedTable, viewRuntime } from './eventWindows.js'
import type { TableState } from './tableState.js'
import type { WindowIndex } from './windowIndex.js'
import { closedWindowKey, parseClosedWindowKey, parseWindowKey, windowKey } from './windowKeys.js'
import type { WindowTime } from './windowTime.js'
import type { Relative, Window, WindowedSource, WindowSettings } from './windowView.js'
import { closeEvery, duration } from './windowView.js'

/** What the key index holds per key of a sliding view. */
export interface SlidingIndexRecord {
  /** The times of the key's events that windows may still need, ascending, each once. */
  t: number[]
}

/**
 * A sliding-windowed view of a table. A window is `{ start, end }` with `end = start + sizeMs + 1`:
 * half-open like every window here, so it holds the events at `start` to `start + sizeMs`, both
 * included (Kafka Streams prints the same window as `[start, start + sizeMs]`).
 */
export class SlidingWindowedTable<K, V> extends EventWindowedTable<K, V, SlidingIndexRecord> {
  /** @internal */
  constructor(
    table: WindowedSource<K, V>,
    /** The largest time difference (ms) between two events of one window. */
    readonly sizeMs: number,
    settings: WindowSettings,
    time: WindowTime,
    index: WindowIndex<SlidingIndexRecord>,
    runtime: ViewRuntime = viewRuntime(),
    relative: Relative = { kind: 'stream' },
  ) {
    super(table, settings, time, index, runtime, relative)
    checkLength(table.name, 'a sliding window size', sizeMs)
  }

  describe(): string {
    return `sliding ${duration(this.sizeMs)} (grace ${duration(this.settings.graceMs)})`
  }

  get closeEveryMs(): number {
    return closeEvery(this.sizeMs, this.settings.graceMs)
  }

  protected with(relative: Relative): this {
    const { table, sizeMs, settings, time, index, runtime } = this
    return new SlidingWindowedTable(table, sizeMs, settings, time, index, runtime, relative) as this
  }

  protected windowOf(wk: string): { sk: string; window: Window } | undefined {
    const w = parseWindowKey(wk)
    return w && { sk: w.sk, window: this.window(w.start) }
  }

  protected windowsIn(sk: string, record: SlidingIndexRecord): { window: Window; wk: string }[] {
    return this.windowsOf(record.t).map((start) => ({ window: this.window(start), wk: windowKey(sk, start) }))
  }

  protected async place(write: Write<K, V, SlidingIndexRecord>): Promise<boolean> {
    const { state, partition, key, sk, time, mark, apply } = write
    const size = this.sizeMs
    const before = write.record?.t ?? []
    const after = withTime(before, time)
    const existing = this.windowsOf(before)
    const known = new Set(existing)
    // The windows holding the time, and the new ones: the time's own window, the window after
    // the event before it (now not empty), and the window after it (the later events' value).
    const plan: { start: number; from: V; open: boolean; holds: boolean }[] = []
    for (const start of this.windowsOf(after)) {
      const holds = start <= time && time <= start + size
      const open = this.closesAt(start) > mark
      if (known.has(start)) {
        const v = holds && open ? await state.read(partition, windowKey(sk, start)) : undefined
        if (v !== undefined) plan.push({ start, from: v, open, holds })
      } else {
        plan.push({
          start,
          from: await this.aggregateOf(state, partition, sk, before, existing, start),
          open,
          holds,
        })
      }
    }
    if (!plan.some((w) => w.holds && w.open)) return this.late(state, key, time, partition)
    const values: V[] = []
    for (const w of plan) values.push(w.holds ? await apply(w.from) : w.from)
    plan.forEach((w, i) => {
      // A new window closed already is kept (never reported): later windows may start from it.
      const wk = w.open ? windowKey(sk, w.start) : closedWindowKey(sk, w.start)
      state.write(partition, wk, values[i]!, key)
      if (w.open) this.due(state, partition, this.closesAt(w.start))
    })
    this.index.write(partition, sk, { t: after.filter((t) => this.needed(t, mark)) })
    return true
  }

  /**
   * The value of the events of `before` in the window starting at `start`: the value of a stored
   * window holding exactly those events (one does while they are recent enough to matter), or the
   * default when there are none.
   */
  private async aggregateOf(
    state: TableState<K, V>,
    partition: number,
    sk: string,
    before: readonly number[],
    existing: readonly number[],
    start: number,
  ): Promise<V> {
    const [lo, hi] = this.eventsIn(before, start)
    if (lo < hi) {
      // A window holding the same events starts at most sizeMs before the first and after the last.
      for (let i = lowerBound(existing, start - this.sizeMs - 1); i < existing.length; i++) {
        const c = existing[i]!
        if (c > start + this.sizeMs + 1) break
        const [clo, chi] = this.eventsIn(before, c)
        if (clo !== lo || chi !== hi) continue
        const v =
          (await state.read(partition, windowKey(sk, c))) ??
          (await state.read(partition, closedWindowKey(sk, c)))
        if (v !== undefined) return v
      }
    }
    return this.table.defaultValue()
  }

  protected async closePartition(
    state: TableState<K, V>,
    partition: number,
    horizon: number,
  ): Promise<number> {
    const closing: { sk: string; start: number }[] = []
    const expired: { sk: string; start: number }[] = []
    for await (const [wk] of state.entries(partition)) {
      const open = parseWindowKey(wk)
      if (open) {
        if (this.closesAt(open.start) <= horizon) closing.push(open)
        else this.due(state, partition, this.closesAt(open.start))
        continue
      }
      const closed = parseClosedWindowKey(wk)
      if (closed && !this.needed(closed.start + this.sizeMs, horizon)) expired.push(closed)
    }
    const stale: string[] = []
    for await (const [sk, record] of this.index.entries(partition))
      if (record.t.length === 0 || !this.needed(record.t[0]!, horizon)) stale.push(sk)
    closing.sort((a, b) => a.start - b.start || (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0))
    const closed = await this.reportEach(partition, closing, (c) =>
      this.close(state, partition, c.sk, c.start),
    )
    for (const { sk, start } of expired)
      await this.locked(partition, sk, async () =>
        state.write(partition, closedWindowKey(sk, start), undefined),
      )
    for (const sk of stale) {
      await this.locked(partition, sk, async () => {
        const t = (await this.index.read(partition, sk))?.t.filter((x) => this.needed(x, horizon)) ?? []
        this.index.write(partition, sk, t.length > 0 ? { t } : undefined)
      })
    }
    return closed
  }

  /** Reports one window and keeps its value under its closed key. */
  private async close(
    state: TableState<K, V>,
    partition: number,
    sk: string,
    start: number,
  ): Promise<Report> {
    const wk = windowKey(sk, start)
    const value = await state.read(partition, wk)
    if (value === undefined) return undefined
    state.write(partition, closedWindowKey(sk, start), value)
    state.write(partition, wk, undefined)
    return this.report(sk, this.window(start), value)
  }

  protected async read(key: K, time: number): Promise<V> {
    const state = this.state()
    const partition = this.partition(key)
    const sk = this.table.storageKey(key)
    const times = (await this.index.read(partition, sk))?.t ?? []
    const [lo, hi] = this.eventsIn(times, time - this.sizeMs)
    if (lo < hi) {
      for (const start of this.windowsOf(times)) {
        const [slo, shi] = this.eventsIn(times, start)
        if (slo !== lo || shi !== hi) continue
        const v = await state.read(partition, windowKey(sk, start))
        if (v !== undefined) return v
      }
    }
    return this.table.defaultValue()
  }

  /** The starts of the windows the event times make, ascending: a window's events differ by at most sizeMs. */
  private windowsOf(times: readonly number[]): number[] {
    const starts = new Set<number>()
    for (let i = 0; i < times.length; i++) {
      const t = times[i]!
      starts.add(t - this.sizeMs)
      const next = times[i + 1]
      if (next !== undefined && next <= t + 1 + this.sizeMs) starts.add(t + 1)
    }
    return [...starts].sort((a, b) => a - b)
  }

  /** The index range of `times` in the window starting at `start`. */
  private eventsIn(times: readonly number[], start: number): [number, number] {
    return [lowerBound(times, start), lowerBound(times, start + this.sizeMs + 1)]
  }

  /**
   * An event time still matters at stream time `mark`: a window holding it, or one starting just
   * after it, may still be written or give its value to a new window.
   */
  private needed(time: number, mark: number): boolean {
    return time + 2 * this.sizeMs + 2 + this.settings.graceMs > mark
  }

  private closesAt(start: number): number {
    return start + this.sizeMs + 1 + this.settings.graceMs
  }

  private window(start: number): Window {
    return { start, end: start + this.sizeMs + 1 }
  }
}

/** `times` with `time`, ascending, each once. */
function withTime(times: readonly number[], time: number): number[] {
  const i = lowerBound(times, time)
  return times[i] === time ? [...times] : [...times.slice(0, i), time, ...times.slice(i)]
}

/** The first index of the ascending `xs` whose value is at least `x`. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0
  let hi = xs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (xs[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}
