import { ConfigurationError, EncodeError, MephistoError, NoEventContextError } from '../base/errors.js'
import type { Store } from '../stores/store.js'
import { actorContext, refuseIfAbandoned } from '../streams/context.js'
import type { Codec, CodecLike } from '../topics/codec.js'
import { json, resolveCodec, string } from '../topics/codec.js'
import { murmur2 } from '../transport/partitioner.js'
import type { SessionOptions, SessionWindowedTable } from './sessionWindows.js'
import type { SlidingWindowedTable } from './slidingWindows.js'
import type { TableSpec, TableState } from './tableState.js'
import { TableWindows } from './tableWindows.js'
import type { WindowOptions } from './windowed.js'
import { WindowedTable } from './windowed.js'
import type { Window, WindowedSource, WindowView } from './windowView.js'

/**
 * What a changelog record takes beyond its key and value: the record batch header (61 bytes) and
 * the record's own fields (at most about 32), rounded up. A write of at most
 * `maxValueBytes` then fits a changelog created with `max.message.bytes` of
 * `maxValueBytes + CHANGELOG_RECORD_HEADROOM`.
 */
export const CHANGELOG_RECORD_HEADROOM = 1024

/**
 * Default `maxValueBytes`: 1 MiB minus the headroom, so the changelog's `max.message.bytes` is
 * 1 MiB, just under the broker's default `message.max.bytes`.
 */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024 - CHANGELOG_RECORD_HEADROOM

/** Default `recoveryWaitMs`. */
export const DEFAULT_RECOVERY_WAIT_MS = 5000

export interface TableOptions<K, V> {
  /** The value `get` returns for a missing key (not stored until you `set` it). */
  default?: () => V
  /** Partitions of the table and its changelog. Must equal the partitions of its source topic. */
  partitions?: number
  /** Key codec (default: UTF-8 strings; pass `json()` for other keys). */
  key?: CodecLike<K>
  /** Value codec (default: JSON). */
  value?: CodecLike<V>
  /** A store for this table only (default: the app's store). */
  store?: Store | string
  /** Standby copies other workers keep of this table's partitions. */
  standbyReplicas?: number
  /**
   * Writes outside any event go to the partition the key hashes to, instead of needing
   * `{ partition }`.
   */
  usePartitioner?: boolean
  /** Replication factor of the changelog topic. */
  replicas?: number
  /**
   * The largest changelog record a write may make, encoded key plus value, in bytes. A larger
   * `set()` throws an `EncodeError` (code `ENCODE`) for the event that made it, and the changelog
   * is created with `max.message.bytes` to match (this plus 1 KiB of record overhead). Default:
   * 1 MiB minus that 1 KiB (1,047,552).
   */
  maxValueBytes?: number
  /**
   * How long a read from outside any event (a page, a timer, a test) waits for its partition while
   * that partition is being recovered, before it throws NotReadyError. Default 5000 ms (real time).
   */
  recoveryWaitMs?: number
  /**
   * Awaited each time this worker has recovered partitions of the table (taken them over and
   * replayed their changelogs), before any event of them is processed: to warm a cache from the
   * table, say. Called with the partition numbers. An error is logged; processing goes on.
   */
  onRecover?: (partitions: number[]) => unknown
  /** @internal Declared by the engine for its own use (a windowed table's stream time). */
  internal?: boolean
  /**
   * @internal Set by `app.globalTable()`: every worker holds every partition, reads locally, and
   * follows the changelog for the writes of the others. Keys are placed by their hash.
   */
  global?: boolean
  /** Called when a window of a windowed view closes, with its final value (see WindowOptions.graceMs). */
  onWindowClose?: (key: K, window: Window, value: V) => void | Promise<void>
}

/** What the default JSON codec encodes, as text (its bytes are the UTF-8 of it). */
function jsonText(value: unknown): string {
  const text = JSON.stringify(value)
  if (text === undefined) throw new EncodeError(`cannot encode ${typeof value} as JSON`)
  return text
}

/** Per-call partition, for reads and writes outside an event (timers, pages, tests). */
export interface PartitionOption {
  partition?: number
}

/** Resolves table definitions to their running state. Implemented by the app. */
export interface TableHost {
  readonly id: string
  /** Declares another table (a windowed table's stream-time companion). */
  table<K2, V2>(name: string, options: TableOptions<K2, V2>): Table<K2, V2>
  tableState<K, V>(table: Table<K, V>): TableState<K, V>
  readonly topicPartitions: number
}

/**
 * A sharded dictionary backed by a compacted changelog topic. Inside an agent, a key lives in
 * the partition of the event being processed (tables are sharded like their source topic).
 */
export class Table<K = string, V = unknown> implements TableSpec<K, V>, WindowedSource<K, V> {
  readonly keyCodec: Codec<K>
  readonly valueCodec: Codec<V>
  /**
   * @internal The value as JSON text when the value codec is the default JSON one: a write keeps
   * the text and the commit makes the bytes, once per key (see TableState).
   */
  readonly valueText: ((value: V) => string) | undefined
  /** @internal true when keys are plain strings (storage key = the key). */
  readonly stringKeys: boolean
  private readonly defaultFn: (() => V) | undefined

  /** @internal */
  constructor(
    readonly name: string,
    readonly options: Readonly<TableOptions<K, V>>,
    /** @internal */ readonly host: TableHost,
  ) {
    if (!/^[a-zA-Z0-9._-]{1,200}$/.test(name)) {
      throw new ConfigurationError(
        `invalid table name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`,
      )
    }
    if (
      options.partitions !== undefined &&
      !(Number.isInteger(options.partitions) && options.partitions > 0)
    ) {
      throw new ConfigurationError(`table ${name}: partitions must be a positive integer`)
    }
    if (
      options.maxValueBytes !== undefined &&
      !(Number.isInteger(options.maxValueBytes) && options.maxValueBytes > 0)
    ) {
      throw new ConfigurationError(`table ${name}: maxValueBytes must be a positive integer (bytes)`)
    }
    this.stringKeys = options.key === undefined || options.key === (string() as unknown)
    this.keyCodec = resolveCodec(options.key, string() as unknown as Codec<K>, 'key')
    // A schema checks what set() stores as recovery will decode it, so a value it refuses fails the
    // event that set it instead of the recovery of every later worker.
    this.valueCodec = resolveCodec(options.value, json<V>(), 'value', { validateOnEncode: true })
    this.valueText = options.value === undefined || options.value === json() ? jsonText : undefined
    this.defaultFn = options.default
  }

  /** @internal The table's windowed views and their companion tables. */
  private readonly windowing = new TableWindows<K, V>(this, (suffix, store) =>
    this.host.table(`${this.name}-${suffix}`, {
      partitions: this.partitions,
      ...((store ?? this.options.store) !== undefined && { store: store ?? this.options.store }),
      internal: true,
    }),
  )

  /** @internal Every windowed view of the table: the worker runs their close passes. */
  get windowViews(): readonly WindowView[] {
    return this.windowing.views
  }

  /** @internal The tumbling and hopping views (what the CLI describes as `sizeMs`/`stepMs`). */
  get windows(): WindowedTable<K, V>[] {
    return this.windowing.views.filter((v): v is WindowedTable<K, V> => v instanceof WindowedTable)
  }

  /**
   * A view with one value per key per fixed, non-overlapping window of `sizeMs`. Use the table
   * only through its windowed views.
   */
  tumbling(sizeMs: number, options: WindowOptions = {}): WindowedTable<K, V> {
    return this.windowing.hopping(sizeMs, sizeMs, options)
  }

  /** A view with one value per key per window of `sizeMs`, a new window every `stepMs`. */
  hopping(sizeMs: number, stepMs: number, options: WindowOptions = {}): WindowedTable<K, V> {
    return this.windowing.hopping(sizeMs, stepMs, options)
  }

  /**
   * A view with one value per key per session: events of a key closer than `gapMs` in event time
   * make one session, `[first event, last event + gapMs)`; an event between two sessions merges
   * them with `options.merge`. `graceMs` defaults to `gapMs`.
   */
  session(gapMs: number, options: SessionOptions<V>): SessionWindowedTable<K, V> {
    return this.windowing.session(gapMs, options)
  }

  /**
   * A view with one value per key per sliding window (Kafka Streams' SlidingWindows): events at
   * most `sizeMs` apart share a window, one ending at each event and one starting just after each
   * event while later events fall in it. `graceMs` defaults to `sizeMs`.
   */
  sliding(sizeMs: number, options: WindowOptions = {}): SlidingWindowedTable<K, V> {
    return this.windowing.sliding(sizeMs, options)
  }

  /** `<app>-<table>-changelog` */
  get changelogTopic(): string {
    return `${this.host.id}-${this.name}-changelog`
  }

  get partitions(): number {
    return this.options.partitions ?? this.host.topicPartitions
  }

  /** The largest changelog record (encoded key plus value) a write may make. */
  get maxValueBytes(): number {
    return this.options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  }

  /** The value for `key`, or `default()` when absent (without storing it). */
  async get(key: K, options?: PartitionOption): Promise<V> {
    const state = this.state()
    const sk = this.storageKey(key)
    const p = this.readPartition(sk, options)
    if (state.recovering.has(p)) await this.awaitRecovery(state, p)
    const v = await state.read(p, sk)
    state.sensors.onTableGet(this.name, key)
    if (v !== undefined) return v
    return this.defaultValue()
  }

  /** True when the key is stored (a default does not count). */
  async has(key: K, options?: PartitionOption): Promise<boolean> {
    const state = this.state()
    const sk = this.storageKey(key)
    const p = this.readPartition(sk, options)
    if (state.recovering.has(p)) await this.awaitRecovery(state, p)
    return (await state.read(p, sk)) !== undefined
  }

  /**
   * A read from outside any event (a page, a timer) of a partition being recovered waits for its
   * recovery, bounded by `recoveryWaitMs`, instead of answering the default of a value still on
   * its way; past the bound it throws NotReadyError (a page answers 503). Events never wait: a
   * partition's events are delivered only once its tables have recovered.
   */
  private async awaitRecovery(state: TableState<K, V>, partition: number): Promise<void> {
    if (actorContext.getStore()?.event) return
    await state.recovering.wait(partition, this.options.recoveryWaitMs ?? DEFAULT_RECOVERY_WAIT_MS)
  }

  /**
   * Stores `value`: in the local shard now, in the changelog before the next commit. The value is
   * encoded here (a snapshot: change it later and only a new `set()` stores the change); one the
   * value codec refuses, or larger than `maxValueBytes`, throws an `EncodeError` and stores nothing.
   */
  set(key: K, value: V, options?: PartitionOption): void {
    if (value === undefined) throw new TypeError(`table ${this.name}: cannot set undefined (use delete)`)
    const state = this.state()
    const sk = this.storageKey(key)
    state.write(this.writePartition(sk, options, 'set'), sk, value, key)
    state.sensors.onTableSet(this.name, key, value)
  }

  delete(key: K, options?: PartitionOption): void {
    const state = this.state()
    const sk = this.storageKey(key)
    state.write(this.writePartition(sk, options, 'delete'), sk, undefined)
    state.sensors.onTableDelete(this.name, key)
  }

  /** Reads, applies `fn`, stores and returns the new value. */
  async update(key: K, fn: (current: V) => V | Promise<V>, options?: PartitionOption): Promise<V> {
    // Resolve the partition first so a write outside an event fails before fn runs.
    const sk = this.storageKey(key)
    const p = this.writePartition(sk, options, 'update')
    const next = await fn(await this.get(key, { partition: p }))
    this.set(key, next, { partition: p })
    return next
  }

  /** Entries of the partitions this worker owns (or of one partition). */
  async *entries(options?: PartitionOption): AsyncIterable<[K, V]> {
    const state = this.state()
    const parts = options?.partition !== undefined ? [options.partition] : state.ownedPartitions()
    for (const p of parts) {
      for await (const [sk, v] of state.entries(p)) yield [this.keyFromStorage(sk), v]
    }
  }

  /** @internal The table's state in the running worker. */
  state(): TableState<K, V> {
    return this.host.tableState(this)
  }

  /** @internal `default()`, frozen when the table's values are handed out frozen (the testkit). */
  defaultValue(): V {
    if (!this.defaultFn) return undefined as V
    return this.state().handOut(this.defaultFn())
  }

  /** @internal */
  storageKey(key: K): string {
    if (this.stringKeys) {
      if (typeof key !== 'string') {
        throw new TypeError(
          `table ${this.name} has string keys, got ${typeof key}; pass { key: json() } for other keys`,
        )
      }
      return key
    }
    return this.keyCodec.encode(key).toString('latin1')
  }

  /** @internal */
  keyBytes(storageKey: string): Buffer {
    return Buffer.from(storageKey, this.stringKeys ? 'utf8' : 'latin1')
  }

  /** @internal */
  storageKeyFromBytes(bytes: Buffer): string {
    return bytes.toString(this.stringKeys ? 'utf8' : 'latin1')
  }

  /** @internal */
  keyFromStorage(sk: string): K {
    return this.stringKeys ? (sk as K) : this.keyCodec.decode(Buffer.from(sk, 'latin1'))
  }

  /** @internal */
  hashPartition(storageKey: string): number {
    return (murmur2(this.keyBytes(storageKey)) & 0x7fffffff) % this.partitions
  }

  /** @internal */
  readPartition(sk: string, options: PartitionOption | undefined): number {
    if (options?.partition !== undefined) return this.checkPartition(options.partition)
    if (this.options.global) return this.hashPartition(sk)
    const event = actorContext.getStore()?.event
    if (event) return this.eventPartition(event.partition, event.topic)
    return this.hashPartition(sk)
  }

  private writePartition(sk: string, options: PartitionOption | undefined, op: string): number {
    const context = actorContext.getStore()
    if (context?.abandoned) refuseIfAbandoned(`table ${this.name}: ${op}`)
    if (options?.partition !== undefined) return this.checkPartition(options.partition)
    // A global table is not sharded like a stream: a key lives where its hash puts it.
    if (this.options.global) return this.hashPartition(sk)
    const event = context?.event
    if (event) return this.eventPartition(event.partition, event.topic)
    if (this.options.usePartitioner) return this.hashPartition(sk)
    throw new NoEventContextError(
      `table ${this.name}: ${op} outside of an event. Tables are sharded like the stream that writes them, ` +
        `so a write from a timer, page or test must say where it goes: pass { partition }, or create the ` +
        `table with { usePartitioner: true } to hash the key.`,
    )
  }

  private eventPartition(partition: number, topic: string): number {
    if (partition >= this.partitions) {
      throw new MephistoError(
        'CO_PARTITIONING',
        `table ${this.name} has ${this.partitions} partition(s) but the current event came from partition ` +
          `${partition} of ${topic}. Tables are sharded like their source: give the table as many partitions ` +
          `as ${topic}, or re-key into ${this.partitions} with groupBy(fn, { name, partitions: ${this.partitions} }). ` +
          'This is a configuration error: the worker stops (no event is dead-lettered for it).',
      )
    }
    return partition
  }

  private checkPartition(p: number): number {
    if (!Number.isInteger(p) || p < 0 || p >= this.partitions) {
      throw new MephistoError(
        'PARTITION_OUT_OF_RANGE',
        `table ${this.name}: partition ${p} is out of range (it has ${this.partitions})`,
      )
    }
    return p
  }
}
