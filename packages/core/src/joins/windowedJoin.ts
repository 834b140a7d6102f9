/**
 * What a windowed stream-stream join does with each event, inside that event: move its side's
 * stream time in the partition, expire the other side's buffered events that time has passed (a
 * left join answers its unmatched left events then), join the event with the other side's
 * buffered events of its key, buffer it. Every write goes to the tables of the event's partition
 * and every result is sent from the event, so under exactly-once they commit in its transaction.
 * Declaring the join is streamJoin.ts's job.
 *
 * Each side has its own stream time (the largest event time of that side in the partition): the
 * two sides are read by two agents, and one may run far behind the other (a backlog, a replay, a
 * restart). Judging one side's events by the other's time would drop them as late; so an event is
 * late by its own side's time, and a buffered event expires by the other side's time, when no event
 * that side may still send can join it. Their events of one partition are processed one at a time
 * (a lock per partition, per worker), so each sees the other's writes whole.
 */
import { randomUUID } from 'node:crypto'
import { KeyedLock } from '../base/keyedLock.js'
import type { Logger } from '../base/logger.js'
import type { StreamEvent } from '../streams/event.js'
import type { Table } from '../tables/table.js'
import type { Topic } from '../topics/topic.js'
import { ExpiryIndex } from './expiryIndex.js'
import type { Buffered } from './joinBuffer.js'
import { firstExpiry, partnersOf, splitExpired, withEntry } from './joinBuffer.js'
import type { JoinResult, JoinSettings } from './joinOptions.js'

export type Side = 'left' | 'right'

/** A partition's stream times, as the time table stores them (one key per partition). */
export interface JoinClock {
  /** The largest event time of each side in the partition; null before its first event. */
  left: number | null
  right: number | null
  /** The expiry indexes the last writer kept: another one means the indexes here are stale. */
  owner: string
}

const CLOCK_KEY = 'stream-time'

/** The join's tables and its result topic. */
export interface JoinStorage<K, L, R> {
  lefts: Table<K, Buffered<L>[]>
  rights: Table<K, Buffered<R>[]>
  clock: Table<string, JoinClock>
  results: Topic<K, JoinResult<L, R>>
}

/** The expiry indexes of one partition, one per side. */
interface PartitionIndex<K> {
  owner: string
  left: ExpiryIndex<K>
  right: ExpiryIndex<K>
}

/** What one worker keeps for the join: a new worker (a restart) starts again from the tables. */
interface WorkerJoin<K> {
  readonly lock: KeyedLock<number>
  readonly indexes: Map<number, PartitionIndex<K>>
  checked: boolean
  dropped: number
}

type Result<K, L, R> = [key: K, value: JoinResult<L, R>]
type AnyBuffer<K> = Table<K, Buffered<unknown>[]>

const other = (side: Side): Side => (side === 'left' ? 'right' : 'left')

export class WindowedJoin<K, L, R> {
  private readonly workers = new WeakMap<object, WorkerJoin<K>>()
  /** withinMs + graceMs: a buffered event expires once the other side's time passes its time + this. */
  private readonly horizonMs: number

  constructor(
    readonly settings: JoinSettings,
    private readonly storage: JoinStorage<K, L, R>,
    private readonly logger: Logger,
    /** Throws a ConfigurationError when the join's topics are not co-partitioned on the broker. */
    private readonly checkCopartitioned: () => Promise<void>,
  ) {
    this.horizonMs = settings.withinMs + settings.graceMs
  }

  /** Processes `event` of `side`; call it inside the event (from its agent). */
  async process(side: Side, event: StreamEvent<unknown, K>): Promise<void> {
    const worker = this.worker()
    if (!worker.checked) {
      await this.checkCopartitioned()
      worker.checked = true
    }
    if (event.key === null || event.key === undefined) {
      // No key, no partner: a left join still answers for it.
      if (this.owesMiss(side)) await this.send([[event.key, this.miss(event.value)]], event.partition)
      else this.drop(worker, event, 'it has no key')
      return
    }
    await worker.lock.run(event.partition, () => this.inPartition(worker, side, event))
  }

  private async inPartition(
    worker: WorkerJoin<K>,
    side: Side,
    event: StreamEvent<unknown, K>,
  ): Promise<void> {
    const partition = event.partition
    const at = { partition }
    const clock = (await this.storage.clock.get(CLOCK_KEY, at)) as JoinClock | undefined
    let index = worker.indexes.get(partition)
    if (index === undefined || clock?.owner !== index.owner) {
      index = await this.rebuild(partition)
      worker.indexes.set(partition, index)
    }
    const before = clock?.[side] ?? null
    const time = event.timestamp
    const now = before === null ? time : Math.max(before, time)
    // Expiry first, written before the event's own join: a retry of the event finds this side's
    // time moved already and does not answer these misses twice.
    const misses =
      before === null || now > before ? await this.expire(other(side), index, partition, now) : []
    if (clock === undefined || clock[side] !== now || clock.owner !== index.owner) {
      const next: JoinClock = { left: clock?.left ?? null, right: clock?.right ?? null, owner: index.owner }
      next[side] = now
      this.storage.clock.set(CLOCK_KEY, next, at)
    }
    await this.send(misses, partition)
    if (before !== null && time + this.settings.graceMs < before) {
      // Later than grace: what it could have joined may be gone, so it joins nothing.
      if (this.owesMiss(side)) await this.send([[event.key, this.miss(event.value)]], partition)
      else
        this.drop(
          worker,
          event,
          `it is ${before - time} ms behind its side's stream time (graceMs ${this.settings.graceMs})`,
        )
      return
    }
    await this.send(await this.join(side, event, index[side], clock?.[other(side)] ?? null), partition)
  }

  /**
   * Joins the event with the other side's buffered events of its key, and buffers it unless the
   * other side's stream time `otherTime` has passed it already (that side runs ahead).
   */
  private async join(
    side: Side,
    event: StreamEvent<unknown, K>,
    index: ExpiryIndex<K>,
    otherTime: number | null,
  ): Promise<Result<K, L, R>[]> {
    const { lefts } = this.storage
    const at = { partition: event.partition }
    const key = event.key
    const own = this.buffer(side)
    const mine = await own.get(key, at)
    // Buffered already: a redelivery of an event whose writes were flushed (at-least-once).
    if (mine.some((b) => b.o === event.offset)) return []
    const theirs = await this.buffer(other(side)).get(key, at)
    const partners = partnersOf(theirs, event.timestamp, this.settings.withinMs)
    const entry: Buffered<unknown> = { t: event.timestamp, o: event.offset, v: event.value }
    const results: Result<K, L, R>[] = []
    const leftJoin = this.settings.type === 'left'
    if (side === 'left') {
      if (leftJoin && partners.length > 0) entry.m = 1
      for (const b of partners) results.push([key, { left: event.value as L, right: b.v as R }])
    } else {
      for (const b of partners) results.push([key, { left: b.v as L, right: event.value as R }])
      // The left events it joined owe no miss any more.
      if (leftJoin && partners.some((b) => !b.m)) {
        const marked = theirs.map((b) => (partners.includes(b) && !b.m ? { ...b, m: 1 as const } : b))
        lefts.set(key, marked as Buffered<L>[], at)
      }
    }
    if (otherTime !== null && event.timestamp + this.horizonMs < otherTime) {
      // Expired on arrival: nothing the other side may still send can join it.
      if (this.owesMiss(side) && partners.length === 0) results.push([key, this.miss(event.value)])
      return results
    }
    own.set(key, withEntry(mine, entry), at)
    index.add(event.timestamp + this.horizonMs, key, own.storageKey(key))
    return results
  }

  /**
   * Drops the buffered events of `side` that the other side's stream time `time` has passed
   * (their time + withinMs + graceMs), and returns the misses a left join owes for the unmatched
   * left ones, oldest first.
   */
  private async expire(
    side: Side,
    index: PartitionIndex<K>,
    partition: number,
    time: number,
  ): Promise<Result<K, L, R>[]> {
    const at = { partition }
    const table = this.buffer(side)
    const owed: { key: K; entry: Buffered<unknown> }[] = []
    for (const key of index[side].takeDue(time)) {
      const { kept, expired } = splitExpired(await table.get(key, at), time, this.horizonMs)
      if (expired.length > 0) {
        if (kept.length === 0) table.delete(key, at)
        else table.set(key, kept, at)
      }
      if (this.owesMiss(side)) for (const entry of expired) if (!entry.m) owed.push({ key, entry })
      const next = firstExpiry(kept, this.horizonMs)
      if (next !== undefined) index[side].add(next, key, table.storageKey(key))
    }
    owed.sort((a, b) => a.entry.t - b.entry.t || a.entry.o - b.entry.o)
    return owed.map(({ key, entry }) => [key, this.miss(entry.v)])
  }

  /** The partition's expiry indexes, from its buffer tables, under a new owner. */
  private async rebuild(partition: number): Promise<PartitionIndex<K>> {
    const index: PartitionIndex<K> = {
      owner: randomUUID(),
      left: new ExpiryIndex(),
      right: new ExpiryIndex(),
    }
    for (const side of ['left', 'right'] as const) {
      const table = this.buffer(side)
      for await (const [key, list] of table.entries({ partition })) {
        const first = firstExpiry(list, this.horizonMs)
        if (first !== undefined) index[side].add(first, key, table.storageKey(key))
      }
    }
    return index
  }

  private buffer(side: Side): AnyBuffer<K> {
    return (side === 'left' ? this.storage.lefts : this.storage.rights) as AnyBuffer<K>
  }

  /** A left join answers for each left event: joined, or `{ left, right: null }`. */
  private owesMiss(side: Side): boolean {
    return side === 'left' && this.settings.type === 'left'
  }

  private miss(left: unknown): JoinResult<L, R> {
    return { left: left as L, right: null }
  }

  private async send(results: readonly Result<K, L, R>[], partition: number): Promise<void> {
    for (const [key, value] of results) await this.storage.results.send({ key, value, partition })
  }

  /** Counts an event that joins nothing and is owed nothing; logged at 1, 10, 100... per worker. */
  private drop(worker: WorkerJoin<K>, event: StreamEvent<unknown, K>, why: string): void {
    const n = ++worker.dropped
    const message =
      `join ${this.settings.name}: dropped ${event.topic}[${event.partition}]@${event.offset}: ${why}` +
      ` (${n} dropped by this worker)`
    if (/^10*$/.test(String(n))) this.logger.warn(message)
    else this.logger.debug(message)
  }

  /** This worker's part: found by the time table's state, which each new worker makes anew. */
  private worker(): WorkerJoin<K> {
    const state = this.storage.clock.state()
    let worker = this.workers.get(state)
    if (worker === undefined) {
      worker = { lock: new KeyedLock<number>(), indexes: new Map(), checked: false, dropped: 0 }
      this.workers.set(state, worker)
    }
    return worker
  }
}
