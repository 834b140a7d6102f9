/**
 * The windowed views of one table: builds each kind (tumbling, hopping, session, sliding) with the
 * companion tables it needs, the stream time `<table>-window-time` and, for session and sliding
 * views, the key index `<table>-window-index`, and lists them for the worker's close passes. What a
 * view does with its windows is in the view's own file.
 */
import { ConfigurationError } from '../base/errors.js'
import type { Store } from '../stores/store.js'
import type { SessionIndexRecord, SessionOptions } from './sessionWindows.js'
import { SessionWindowedTable } from './sessionWindows.js'
import type { SlidingIndexRecord } from './slidingWindows.js'
import { SlidingWindowedTable } from './slidingWindows.js'
import type { TableState } from './tableState.js'
import type { WindowOptions } from './windowed.js'
import { WindowedTable, windowSettings } from './windowed.js'
import { WindowIndex } from './windowIndex.js'
import type { PartitionTime } from './windowTime.js'
import { WindowTime } from './windowTime.js'
import type { WindowedSource, WindowView } from './windowView.js'

/**
 * Declares the companion table `<table>-<suffix>` (engine-internal, partitioned like the table) in
 * `store`, or in the table's own store when none is given.
 */
export type DeclareCompanion = <R>(
  suffix: string,
  store?: Store | string,
) => { state(): TableState<string, R> }

export class TableWindows<K, V> {
  /** Every windowed view of the table, in the order they were made. */
  readonly views: WindowView[] = []
  private time: WindowTime | undefined

  constructor(
    private readonly table: WindowedSource<K, V>,
    private readonly declare: DeclareCompanion,
  ) {}

  hopping(sizeMs: number, stepMs: number, options: WindowOptions): WindowedTable<K, V> {
    const settings = windowSettings(this.table.name, sizeMs, options)
    return this.add(new WindowedTable(this.table, sizeMs, stepMs, settings, this.windowTime(settings.idleMs)))
  }

  session(gapMs: number, options: SessionOptions<V>): SessionWindowedTable<K, V> {
    const settings = windowSettings(this.table.name, gapMs, options)
    const time = this.windowTime(settings.idleMs)
    const index = this.windowIndex<SessionIndexRecord>()
    return this.add(new SessionWindowedTable(this.table, gapMs, options?.merge, settings, time, index))
  }

  sliding(sizeMs: number, options: WindowOptions): SlidingWindowedTable<K, V> {
    const settings = windowSettings(this.table.name, sizeMs, options)
    const time = this.windowTime(settings.idleMs)
    const index = this.windowIndex<SlidingIndexRecord>()
    return this.add(new SlidingWindowedTable(this.table, sizeMs, settings, time, index))
  }

  private add<W extends WindowView>(view: W): W {
    this.views.push(view)
    return view
  }

  /**
   * The stream time of the table's windows, kept in memory and in the companion's changelog, shared
   * by every windowed view of the table.
   */
  private windowTime(idleMs: number): WindowTime {
    this.time ??= new WindowTime(this.declare<PartitionTime>('window-time', 'memory://'), idleMs)
    return this.time
  }

  /** Where each key's windows are, in the table's store; one session or sliding view per table. */
  private windowIndex<R>(): WindowIndex<R> {
    if (this.views.some((v) => v instanceof SessionWindowedTable || v instanceof SlidingWindowedTable))
      throw new ConfigurationError(
        `table ${this.table.name} already has a session or sliding view: give each windowed view its own table`,
      )
    return new WindowIndex(this.declare<R>('window-index'))
  }
}
