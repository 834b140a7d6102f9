import type { Clock } from '../base/clock.js'
import { MephistoError } from '../base/errors.js'
import { inParallel } from '../base/inParallel.js'
import { KeyedLock } from '../base/keyedLock.js'
import type { Sensor } from '../sensors/sensor.js'
import { deepFreeze } from '../stores/deepFreeze.js'
import type { StoreWrite, TableStore } from '../stores/store.js'
import type { Codec } from '../topics/codec.js'
import type { OutgoingRecord, RawRecord, RecordMetadata, Transport } from '../transport/transport.js'

import { RecoveringPartitions } from './recoveringPartitions.js'
import { encodeTableValue } from './tableValue.js'

const DELETED: unique symbol = Symbol('deleted')

/** Partitions of one table recovered at once. */
const RECOVERY_PARALLELISM = 8

interface ChangelogBounds {
  ends: Map<number, number>
  starts: Map<number, number>
}

/**
 * A pending write: the value reads see, and its changelog value encoded once when it was set (as
 * JSON text for the default codec: the bytes are made at commit, once per key, not per write).
 */
interface Write<V> {
  value: V
  encoded: Buffer | string
}

type Pending<V> = Map<string, Write<V> | typeof DELETED>

/**
 * What a table's state (and the worker driving it) needs of the table's definition. `Table`
 * implements it; it is declared here so that this file does not import the table, which reaches
 * its state through `TableHost`.
 */
export interface TableSpec<K, V> {
  readonly name: string
  readonly partitions: number
  /** `<app>-<table>-changelog` */
  readonly changelogTopic: string
  readonly keyCodec: Codec<K>
  readonly valueCodec: Codec<V>
  readonly options: { readonly standbyReplicas?: number; readonly global?: boolean }
  /** The largest changelog record (encoded key plus value) a write may make. */
  readonly maxValueBytes: number
  /** The value codec as text, when it is the default JSON codec (what its bytes are the UTF-8 of). */
  readonly valueText?: ((value: V) => string) | undefined
  /** The changelog record key of a storage key. */
  keyBytes(storageKey: string): Buffer
  /** The storage key of a changelog record key. */
  storageKeyFromBytes(bytes: Buffer): string
}

/**
 * A table's state inside one running worker: its store, the writes not yet in the changelog
 * (`dirty`), the writes being flushed (`flushing`), and which partitions it owns.
 *
 * Writes land in `dirty` and are written to the changelog at commit time, deduplicated per
 * key: a hot key costs one changelog record per commit, not one per event. That is safe
 * because input offsets are committed only after the changelog flush; a crash loses the
 * dirty writes together with the uncommitted offsets whose events made them.
 *
 * A value is encoded when it is written, not at commit: a value the codec refuses, or one too
 * large for the changelog, then fails the write (and so the event that made it, under its agent's
 * `onError`) instead of every commit after it. The encoding is kept for the commit, which does
 * not encode again: JSON text for the default codec, made bytes once per key per commit (a
 * Buffer per write would cost about as much as the JSON itself).
 */
export class TableState<K, V> {
  private dirty = new Map<number, Pending<V>>()
  private flushing = new Map<number, Pending<V>>()
  private readonly owned = new Set<number>()
  private dirtyCount = 0
  private readonly locks = new KeyedLock<number>()
  /** Partitions being recovered: reads from outside an event wait for them (Table.get). */
  readonly recovering: RecoveringPartitions
  /** Values are handed out deeply frozen (the store asks for it: the testkit's memory store). */
  readonly frozenValues: boolean

  constructor(
    readonly table: TableSpec<K, V>,
    readonly store: TableStore<V>,
    readonly sensors: Required<Sensor>,
    readonly clock: Clock,
    /** Asks the worker for an early commit when too many writes are pending. */
    private readonly requestCommit: () => void,
    private readonly maxDirty = 50_000,
  ) {
    this.frozenValues = store.frozenValues === true
    this.recovering = new RecoveringPartitions(table.name)
  }

  ownedPartitions(): number[] {
    return [...this.owned].sort((a, b) => a - b)
  }

  owns(partition: number): boolean {
    return this.owned.has(partition)
  }

  async read(partition: number, sk: string): Promise<V | undefined> {
    const d = this.dirty.get(partition)?.get(sk) ?? this.flushing.get(partition)?.get(sk)
    if (d !== undefined) return d === DELETED ? undefined : d.value
    const sync = this.store.getSync
    if (sync) return sync(partition, sk)
    return this.store.get(partition, sk)
  }

  /**
   * {@link read}, synchronously: for tables whose store answers synchronously (the memory store),
   * such as a windowed table's stream-time companion. Throws for other stores.
   */
  readSync(partition: number, sk: string): V | undefined {
    const d = this.dirty.get(partition)?.get(sk) ?? this.flushing.get(partition)?.get(sk)
    if (d !== undefined) return d === DELETED ? undefined : d.value
    const sync = this.store.getSync
    if (!sync) throw new Error(`table ${this.table.name}: its store cannot be read synchronously`)
    return sync(partition, sk)
  }

  /**
   * Writes `value` (`undefined` deletes) to the partition's pending writes. Throws, storing
   * nothing, when the partition is not owned here or the value cannot go to the changelog; `key`
   * is the key as the caller knows it, for that error.
   */
  write(partition: number, sk: string, value: V | undefined, key?: unknown): void {
    if (!this.owned.has(partition)) {
      throw new MephistoError(
        'NOT_READY',
        `table ${this.table.name}: partition ${partition} is not assigned to this worker (it owns ` +
          `[${this.ownedPartitions().join(', ')}]); write from the agent that processes that partition`,
      )
    }
    let entry: Write<V> | typeof DELETED = DELETED
    if (value !== undefined) {
      entry = { value, encoded: encodeTableValue(this.table, sk, value, key) }
      if (this.frozenValues) deepFreeze(value)
    }
    let d = this.dirty.get(partition)
    if (!d) this.dirty.set(partition, (d = new Map()))
    const before = d.size
    d.set(sk, entry)
    if (d.size > before && ++this.dirtyCount >= this.maxDirty) this.requestCommit()
  }

  /** `default()` of the table as a read hands it out (frozen when values are). */
  handOut(value: V): V {
    return this.frozenValues ? deepFreeze(value) : value
  }

  async *entries(partition: number): AsyncIterable<[string, V]> {
    const overlay = new Map<string, Write<V> | typeof DELETED>([
      ...(this.flushing.get(partition) ?? []),
      ...(this.dirty.get(partition) ?? []),
    ])
    for await (const [sk, v] of this.store.entries(partition)) {
      if (overlay.has(sk)) continue
      yield [sk, v]
    }
    for (const [sk, v] of overlay) if (v !== DELETED) yield [sk, v.value]
  }

  /**
   * First half of a commit: moves the pending writes aside and hands their changelog records
   * to `send`. Runs synchronously with the offset snapshot, so the snapshot's events are
   * exactly those whose writes are being flushed.
   */
  beginCommit(keep?: ReadonlySet<number>): OutgoingRecord[] {
    const records: OutgoingRecord[] = []
    if (this.dirtyCount === 0 && this.dirty.size === 0 && this.flushing.size === 0) return records
    const topic = this.table.changelogTopic
    // Partitions in `keep` (exactly-once: an event of theirs is still in progress) keep their new
    // writes for a later commit: they may be half of that event's.
    const kept = new Map<number, Pending<V>>()
    // A previous commit that failed left its writes in `flushing`: they are sent again, every
    // partition of them, whether or not it has new writes (completeCommit applies all of
    // `flushing` to the store, so one not sent again would be stored but never in the changelog).
    const partitions = new Set([...this.flushing.keys(), ...this.dirty.keys()])
    for (const partition of partitions) {
      let writes = this.dirty.get(partition)
      if (writes && keep?.has(partition)) {
        kept.set(partition, writes)
        writes = undefined
      }
      const prev = this.flushing.get(partition)
      const merged = prev && writes ? new Map([...prev, ...writes]) : (prev ?? writes)
      if (!merged || merged.size === 0) continue
      this.flushing.set(partition, merged)
      for (const [sk, v] of merged) {
        records.push({
          topic,
          partition,
          key: this.table.keyBytes(sk),
          value:
            v === DELETED ? null : typeof v.encoded === 'string' ? Buffer.from(v.encoded, 'utf8') : v.encoded,
        })
      }
    }
    this.dirty = kept
    this.dirtyCount = 0
    for (const writes of kept.values()) this.dirtyCount += writes.size
    return records
  }

  /** The changelog records of the last `beginCommit` are durable at `flushed`: apply them to the store. */
  async completeCommit(flushed: readonly RecordMetadata[]): Promise<void> {
    const topic = this.table.changelogTopic
    const offsets = new Map<number, number>()
    for (const m of flushed) if (m.topic === topic) offsets.set(m.partition, m.offset)
    for (const [partition, writes] of this.flushing) {
      const batch: StoreWrite<V>[] = []
      for (const [key, v] of writes) batch.push({ key, value: v === DELETED ? undefined : v.value })
      // Only owned partitions are kept; a revoked one was flushed to the changelog, which is enough.
      // A global table's changelog has other writers: its applied offset moves only by reading
      // the changelog (refresh), or the others' records before this one would be skipped.
      const applied = this.table.options.global ? -1 : (offsets.get(partition) ?? -1)
      if (this.owned.has(partition)) await this.store.write(partition, batch, applied)
      // Dropped only once its own write landed: reads of a partition still waiting for its turn
      // must keep seeing these values, not the store's older ones.
      this.flushing.delete(partition)
    }
  }

  /** The commit failed: keep the writes pending so the next commit retries them. */
  abortCommit(): void {
    for (const [partition, writes] of this.flushing) {
      const d = this.dirty.get(partition)
      this.dirty.set(partition, d ? new Map([...writes, ...d]) : writes)
    }
    this.flushing = new Map()
  }

  /**
   * Brings a partition up to the end of its changelog, then marks it owned. Reads only what
   * the store has not applied yet (a standby copy or persisted state shortens it to the tail).
   */
  async recover(transport: Transport, partition: number): Promise<{ replayed: number }> {
    const [replayed = 0] = await this.recoverMany(transport, [partition])
    return { replayed }
  }

  /**
   * {@link recover} for several partitions: one look-up of the changelog's offsets for all of
   * them, and up to {@link RECOVERY_PARALLELISM} partitions read at once, so a worker handed many
   * partitions waits for the slowest, not for the sum (opening a persisted store and the broker
   * round trips cost about the same as replaying a short tail). Returns records replayed per
   * partition, in the order given.
   */
  async recoverMany(transport: Transport, partitions: readonly number[]): Promise<number[]> {
    const todo = partitions.filter((p) => !this.owned.has(p))
    const replayed = new Map<number, number>()
    if (todo.length > 0) {
      for (const p of todo) this.recovering.begin(p)
      try {
        const bounds = await this.changelogBounds(transport)
        await inParallel(todo, RECOVERY_PARALLELISM, (partition) =>
          this.exclusive(partition, async () => {
            replayed.set(partition, await this.catchUp(transport, partition, true, bounds))
            this.owned.add(partition)
            this.recovering.end(partition)
          }),
        )
      } catch (err) {
        for (const p of todo) this.recovering.end(p, err)
        throw err
      }
    }
    return partitions.map((p) => replayed.get(p) ?? 0)
  }

  /**
   * Standby replica: applies what the changelog of a partition this worker does not own has
   * gained since last time, so a failover replays only the lag. Returns records applied.
   */
  async follow(transport: Transport, partition: number): Promise<number> {
    if (this.owned.has(partition)) return 0
    return this.exclusive(partition, async () =>
      this.owned.has(partition) ? 0 : this.catchUp(transport, partition, false),
    )
  }

  /** The changelog's first and end offsets per partition (the end is the last stable offset). */
  private async changelogBounds(transport: Transport): Promise<ChangelogBounds> {
    const topic = this.table.changelogTopic
    const [ends, starts] = await Promise.all([
      transport.admin.endOffsets(topic),
      transport.admin.startOffsets(topic),
    ])
    return { ends, starts }
  }

  private async catchUp(
    transport: Transport,
    partition: number,
    report: boolean,
    known?: ChangelogBounds,
  ): Promise<number> {
    const topic = this.table.changelogTopic
    const [{ ends, starts }, applied] = await Promise.all([
      known ?? this.changelogBounds(transport),
      this.store.appliedOffset(partition),
    ])
    const end = ends.get(partition) ?? 0
    const from = Math.max(applied + 1, starts.get(partition) ?? 0)
    if (from >= end) return 0
    const total = end - from
    const decode = this.table.valueCodec.decode
    let replayed = 0
    if (report) this.sensors.onRecoveryProgress(this.table.name, partition, 0, total)
    await transport.read(topic, [{ partition, from, to: end }], async (records: RawRecord[]) => {
      const batch: StoreWrite<V>[] = []
      for (const r of records) {
        if (r.key === null) continue
        batch.push({
          key: this.table.storageKeyFromBytes(r.key),
          value: r.value === null ? undefined : decode(r.value),
        })
      }
      const last = records[records.length - 1]
      if (last) await this.store.write(partition, batch, last.offset)
      replayed += records.length
      if (report)
        this.sensors.onRecoveryProgress(this.table.name, partition, Math.min(replayed, total), total)
    })
    return replayed
  }

  /**
   * A global table: applies what the changelog of an owned partition has gained since last time
   * (the writes of the other workers, and this worker's own, in log order). Returns records applied.
   */
  async refresh(transport: Transport, partition: number): Promise<number> {
    return this.exclusive(partition, () => this.catchUp(transport, partition, false))
  }

  /** Recovery and standby reads of one partition never interleave. */
  private exclusive<T>(partition: number, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(partition, fn)
  }

  /** The worker lost the partition: forget it (after its writes were committed). */
  async release(partition: number): Promise<void> {
    this.owned.delete(partition)
    this.dirty.delete(partition)
    this.flushing.delete(partition)
    await this.store.release(partition)
  }

  /** Drops everything not yet committed (a crash). */
  discard(): void {
    this.dirty = new Map()
    this.flushing = new Map()
    this.dirtyCount = 0
  }
}
