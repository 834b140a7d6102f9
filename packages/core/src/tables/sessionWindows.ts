/**
 * Session windows: per key, events closer than `gapMs` to one another in event time make one
 * session, `[first event, last event + gapMs)`. A write finds the sessions its time touches, merges
 * them (the table's `merge`, oldest first) and applies itself to the result. Sessions close by
 * stream time like every window. Where the windows of a key are comes from the key index; this
 * file does not read the partition to find them.
 */
import { ConfigurationError } from '../base/errors.js'
import type { Report, ViewRuntime, Write } from './eventWindows.js'
import { checkLength, EventWindowedTable, viewRuntime } from './eventWindows.js'
import type { TableState } from './tableState.js'
import type { WindowOptions } from './windowed.js'
import type { WindowIndex } from './windowIndex.js'
import { parseSessionKey, sessionKey } from './windowKeys.js'
import type { WindowTime } from './windowTime.js'
import type { Relative, Window, WindowedSource, WindowSettings } from './windowView.js'
import { closeEvery, duration } from './windowView.js'

export interface SessionOptions<V> extends WindowOptions {
  /**
   * Combines the values of two sessions that one event joins into one (`older` starts first). A
   * count merges with `(a, b) => a + b`. Called oldest first when an event bridges several.
   */
  merge: (older: V, newer: V) => V
}

/** What the key index holds per key of a session view. */
export interface SessionIndexRecord {
  /** The key's stored sessions, oldest first, as `[start, end]`. */
  s: [number, number][]
  /**
   * The end of the key's latest closed session: an event before it would reach into a session
   * already reported, and is late. Forgotten once the key has no session and stream time is
   * `gapMs + graceMs` past it, when such an event is late by its own time anyway.
   */
  c?: number
}

/**
 * A session-windowed view of a table. Reads as windows like every windowed view: `items(key)`,
 * `entries()`, `keysIn(window)`; writes are asynchronous (`await view.update(k, fn)`), as they
 * read the key's sessions first.
 */
export class SessionWindowedTable<K, V> extends EventWindowedTable<K, V, SessionIndexRecord> {
  /** @internal */
  constructor(
    table: WindowedSource<K, V>,
    /** Events closer than this in event time (ms) belong to one session. */
    readonly gapMs: number,
    /** @internal */ readonly merge: (older: V, newer: V) => V,
    settings: WindowSettings,
    time: WindowTime,
    index: WindowIndex<SessionIndexRecord>,
    runtime: ViewRuntime = viewRuntime(),
    relative: Relative = { kind: 'stream' },
  ) {
    super(table, settings, time, index, runtime, relative)
    checkLength(table.name, 'a session gap', gapMs)
    if (typeof merge !== 'function')
      throw new ConfigurationError(
        `table ${table.name}: session windows need merge(older, newer), which combines two sessions an event joins`,
      )
  }

  describe(): string {
    return `session gap ${duration(this.gapMs)} (grace ${duration(this.settings.graceMs)})`
  }

  get closeEveryMs(): number {
    return closeEvery(this.gapMs, this.settings.graceMs)
  }

  protected with(relative: Relative): this {
    const { table, gapMs, merge, settings, time, index, runtime } = this
    return new SessionWindowedTable(table, gapMs, merge, settings, time, index, runtime, relative) as this
  }

  protected windowOf(wk: string): { sk: string; window: Window } | undefined {
    const s = parseSessionKey(wk)
    return s && { sk: s.sk, window: { start: s.start, end: s.end } }
  }

  protected windowsIn(sk: string, record: SessionIndexRecord): { window: Window; wk: string }[] {
    return record.s.map(([start, end]) => ({ window: { start, end }, wk: sessionKey(sk, start, end) }))
  }

  protected async place(write: Write<K, V, SessionIndexRecord>): Promise<boolean> {
    const { state, partition, key, sk, time, mark, apply } = write
    const { gapMs, settings } = this
    const record: SessionIndexRecord = write.record ?? { s: [] }
    if (record.c !== undefined && time < record.c) return this.late(state, key, time, partition)
    const joined = record.s.filter(([start, end]) => start - gapMs < time && time < end)
    const start = Math.min(time, ...joined.map(([s]) => s))
    const end = Math.max(time + gapMs, ...joined.map(([, e]) => e))
    if (end + settings.graceMs <= mark || joined.some(([, e]) => e + settings.graceMs <= mark))
      return this.late(state, key, time, partition)
    let merged: V | undefined
    for (const [s, e] of joined) {
      const v = await state.read(partition, sessionKey(sk, s, e))
      if (v !== undefined) merged = merged === undefined ? v : this.merge(merged, v)
    }
    const value = await apply(merged === undefined ? this.table.defaultValue() : merged)
    // The new session first: a value the codec refuses fails the write before anything moved.
    state.write(partition, sessionKey(sk, start, end), value, key)
    for (const [s, e] of joined)
      if (s !== start || e !== end) state.write(partition, sessionKey(sk, s, e), undefined)
    const others = record.s.filter((b) => !joined.includes(b))
    const s = [...others, [start, end] as [number, number]].sort((a, b) => a[0] - b[0])
    this.index.write(partition, sk, { ...record, s })
    this.due(state, partition, end + settings.graceMs)
    return true
  }

  protected async closePartition(
    state: TableState<K, V>,
    partition: number,
    horizon: number,
  ): Promise<number> {
    const grace = this.settings.graceMs
    const closing: { sk: string; start: number; end: number }[] = []
    const forgotten: string[] = []
    for await (const [sk, record] of this.index.entries(partition)) {
      for (const [start, end] of record.s) {
        if (end + grace <= horizon) closing.push({ sk, start, end })
        else this.due(state, partition, end + grace)
      }
      if (record.s.length === 0 && this.forget(record, horizon)) forgotten.push(sk)
    }
    closing.sort((a, b) => a.end - b.end || a.start - b.start || (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0))
    const closed = await this.reportEach(partition, closing, (c) => this.close(state, partition, horizon, c))
    for (const sk of forgotten) {
      await this.locked(partition, sk, async () => {
        const record = await this.index.read(partition, sk)
        if (record && record.s.length === 0 && this.forget(record, horizon))
          this.index.write(partition, sk, undefined)
      })
    }
    return closed
  }

  /** Removes one session and reports it; its end stays in the key's record (see `c`). */
  private async close(
    state: TableState<K, V>,
    partition: number,
    horizon: number,
    { sk, start, end }: { sk: string; start: number; end: number },
  ): Promise<Report> {
    const record = await this.index.read(partition, sk)
    if (!record?.s.some(([s, e]) => s === start && e === end)) return undefined
    const wk = sessionKey(sk, start, end)
    const value = await state.read(partition, wk)
    state.write(partition, wk, undefined)
    const s = record.s.filter(([a, b]) => a !== start || b !== end)
    const next: SessionIndexRecord = { s, c: Math.max(record.c ?? end, end) }
    this.index.write(partition, sk, s.length === 0 && this.forget(next, horizon) ? undefined : next)
    return value === undefined ? undefined : this.report(sk, { start, end }, value)
  }

  /** A key without sessions whose last closed one no event can reach any more. */
  private forget(record: SessionIndexRecord, horizon: number): boolean {
    return record.c === undefined || horizon >= record.c + this.gapMs + this.settings.graceMs
  }

  protected async read(key: K, time: number): Promise<V> {
    const partition = this.partition(key)
    const sk = this.table.storageKey(key)
    const session = (await this.index.read(partition, sk))?.s.find(([s, e]) => s <= time && time < e)
    const v = session && (await this.state().read(partition, sessionKey(sk, session[0], session[1])))
    return v === undefined ? this.table.defaultValue() : v
  }
}
