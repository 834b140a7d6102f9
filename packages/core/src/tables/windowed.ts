import { ConfigurationError } from '../base/errors.js'
import { actorContext } from '../streams/context.js'
import type { TableState } from './tableState.js'

/** A time window: `[start, end)` in ms. */
export interface Window {
  start: number
  end: number
}

export interface WindowOptions {
  /**
   * How long a window is kept after it ends (ms). When `end + expiresMs` has passed on the app
   * clock the window closes: it is removed from the table and the changelog (tombstone) and
   * `onWindowClose` fires. Default: one window size.
   */
  expiresMs?: number
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
  readPartition(storageKey: string, options: undefined): number
}

type Relative = { kind: 'stream' } | { kind: 'now' } | { kind: 'field'; fn: (value: any) => number }

/** Separates the key from the window start inside a windowed table's storage key. */
const SEP = '\u0001'

/**
 * A windowed view of a table: each key has one value per time window. Windows are assigned by
 * event time (the event's timestamp) unless the view is `relativeToNow()` or
 * `relativeToField(fn)`, and close by processing time: when `end + expiresMs` has passed on the
 * app clock, driven by a timer, whether or not more events arrive.
 *
 * Late events: a write whose window has already closed is not applied (it would resurrect a
 * window that `onWindowClose` already reported); it is counted as a late event in the Monitor
 * and the call returns `false`.
 */
export class WindowedTable<K, V> {
  /** @internal */
  constructor(
    readonly table: WindowedSource<K, V>,
    readonly sizeMs: number,
    readonly stepMs: number,
    readonly expiresMs: number,
    private readonly relative: Relative = { kind: 'stream' },
  ) {
    if (!(sizeMs > 0) || !(stepMs > 0) || !Number.isInteger(sizeMs) || !Number.isInteger(stepMs)) {
      throw new ConfigurationError(`table ${table.name}: window size and step must be positive integers (ms)`)
    }
    if (stepMs > sizeMs)
      throw new ConfigurationError(`table ${table.name}: a hopping step cannot exceed the size`)
    if (!(expiresMs >= 0)) throw new ConfigurationError(`table ${table.name}: expiresMs must be >= 0`)
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
    const sk = this.table.storageKey(key)
    let wrote = false
    for (const w of this.openWindows(state, this.relativeTime())) {
      state.write(partition, windowKey(sk, w.start), value, key)
      wrote = true
    }
    if (!wrote) state.sensors.onLateEvent(this.table.name)
    return wrote
  }

  /** Applies `fn` to the value of every window containing the relative time. False when late. */
  async update(key: K, fn: (current: V) => V | Promise<V>): Promise<boolean> {
    const state = this.state()
    const partition = this.partition(key)
    const sk = this.table.storageKey(key)
    const windows = this.openWindows(state, this.relativeTime())
    if (windows.length === 0) {
      state.sensors.onLateEvent(this.table.name)
      return false
    }
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
    const sk = this.table.storageKey(key) + SEP
    const out: [Window, V][] = []
    for await (const [wk, v] of state.entries(this.partition(key))) {
      if (!wk.startsWith(sk)) continue
      const start = Number(wk.slice(sk.length))
      out.push([{ start, end: start + this.sizeMs }, v])
    }
    return out.sort((a, b) => a[0].start - b[0].start)
  }

  /**
   * @internal Closes every window whose `end + expiresMs` has passed: removes it and calls
   * `onWindowClose`. Run by the worker's timer.
   */
  async expire(): Promise<number> {
    const state = this.state()
    const horizon = state.clock.now() - this.expiresMs
    const onClose = this.table.options.onWindowClose
    let closed = 0
    for (const partition of state.ownedPartitions()) {
      const expired: [string, number, V][] = []
      for await (const [wk, v] of state.entries(partition)) {
        const i = wk.lastIndexOf(SEP)
        if (i < 0) continue
        const start = Number(wk.slice(i + 1))
        if (start + this.sizeMs <= horizon) expired.push([wk, start, v])
      }
      expired.sort((a, b) => a[1] - b[1])
      for (const [wk, start, v] of expired) {
        state.write(partition, wk, undefined)
        closed++
        if (onClose) {
          const key = this.table.keyFromStorage(wk.slice(0, wk.lastIndexOf(SEP)))
          await onClose(key, { start, end: start + this.sizeMs }, v)
        }
      }
    }
    return closed
  }

  private openWindows(state: TableState<K, V>, time: number): Window[] {
    const horizon = state.clock.now() - this.expiresMs
    return this.windowsAt(time).filter((w) => w.end > horizon)
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
    const event = actorContext.getStore()?.event
    switch (this.relative.kind) {
      case 'now':
        return this.state().clock.now()
      case 'field':
        if (event) return this.relative.fn(event.value)
        return this.state().clock.now()
      default:
        return event ? event.timestamp : this.state().clock.now()
    }
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
    // Same windows, same storage, another clock: only the view made by tumbling()/hopping() is
    // registered for expiry.
    return new WindowedTable(this.table, this.sizeMs, this.stepMs, this.expiresMs, relative)
  }
}

function windowKey(sk: string, start: number): string {
  return `${sk}${SEP}${start}`
}
