/**
 * Exactly-once: the outputs of events buffered per transaction unit (a partition number), and the
 * commit that writes outputs, changelogs and input offsets transactionally, waiting for whole
 * events. Which producers write it (one per partition number, or one per worker) is
 * transactionProducers.ts'. At-least-once commits are the committer's; this room is idle under
 * at-least-once.
 */
import { isFenced } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { TopicPartition } from '../base/topicPartition.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import type { StreamEvent } from '../streams/event.js'
import type { EventQueue } from '../streams/eventQueue.js'
import type { Delivery } from '../streams/offsetTracker.js'
import type { Pull } from '../streams/stream.js'
import type { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { OutgoingRecord, RecordMetadata, Transport, TransportConsumer } from '../transport/transport.js'
import type { WorkerSettings } from './host.js'
import type { AssignedPartitions } from './partitions.js'
import type { WorkerStatus } from './state.js'
import type { TransactionBatch, TransactionProducers } from './transactionProducers.js'
import { transactionProducers } from './transactionProducers.js'

/**
 * An output waiting for its transaction, with the delivery of the event that made it: it goes
 * with the commit that takes that event's offset, not before (an event acked ahead of an earlier
 * one still queued, such as a record dead-lettered at decode, must not have its output committed
 * while its offset is not, or a restart would write it again).
 */
interface Buffered {
  record: OutgoingRecord
  source: Delivery | undefined
}

export interface TransactionsDeps {
  readonly appId: string
  readonly settings: WorkerSettings
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly transport: Transport
  /** The worker's consumer, once made: its `transactionalProducer` makes one producer per worker. */
  consumer(): TransportConsumer | undefined
  readonly status: WorkerStatus
  readonly partitions: AssignedPartitions
  readonly tables: ReadonlyMap<Table<any, any>, TableState<any, any>>
  readonly leaderTopic: string
  /** Actors holding a partial `take()` batch hand it over. */
  flushBatches(): void
  /** Sends records outside any transaction and flushes the producer (the outbox). */
  flushPlain(records: OutgoingRecord[]): Promise<RecordMetadata[]>
  /** Records buffered by the plain producer and not yet flushed. */
  pendingPlain(): number
  /** Asks for a commit soon (the buffer is full). */
  requestCommit(): void
  /** Stops fetching these partitions (back-pressure: their transaction's buffer is full). */
  pause(tps: TopicPartition[]): void
  resume(tps: TopicPartition[]): void
  /** A transaction failed: roll the worker back to its last commit (the app replaces it). */
  restart(err: unknown): Promise<void>
}

export class Transactions {
  /**
   * The transaction unit is a partition number. The co-partitioning assignment gives partition p
   * of every subscribed topic to one worker, and table partition p is written by the events of
   * those partitions only, so one transaction per p covers a table shard, the offsets of every
   * topic feeding it and the outputs of their events.
   */
  private producersMade: TransactionProducers | undefined
  /** Outputs of events, by partition number, waiting for the next transaction. */
  private outputs = new Map<number, Buffered[]>()
  private buffered = 0
  /** Events handed to actors and not yet acked; a commit snapshots at zero. */
  private handedOut = 0
  /** The same, by partition number (-1: events outside any transaction, such as channel events). */
  private readonly inHand = new Map<number, number>()
  /** Closed while a commit waits for the actors to finish their events. */
  private gate: Promise<void> | undefined
  /**
   * Partition numbers whose fetching is paused: their transaction holds twice `commitEvery` outputs
   * and has not committed (an event of theirs is still in progress). Resumed by the commit that
   * takes their outputs. Bounds the buffer of a stuck transaction without stopping the others.
   */
  private readonly held = new Map<number, TopicPartition[]>()
  private quiesced: (() => void) | undefined
  /**
   * Events still in progress at the end of the last commit's wait, counted by partition number
   * (handed out before `generation`). Later commits do not wait for them again, only for events
   * handed out since, so a stuck event costs the other partitions one wait, not one per commit.
   */
  private stuck = new Map<number, number>()
  private generation = 0
  private lastQuiesceWarning = 0

  constructor(private readonly deps: TransactionsDeps) {}

  /** The producers, chosen by the consumer the first time they are needed. */
  private get producers(): TransactionProducers {
    this.producersMade ??= transactionProducers(this.deps.appId, this.deps.transport, this.deps.consumer())
    return this.producersMade
  }

  /**
   * Makes the newly assigned partition numbers ready to commit, fencing their previous owner
   * (transactionProducers.ts): their open transactions are aborted before this resolves (or, per
   * worker, the group fences them and stable offset reads wait for them), so the changelogs and
   * committed offsets read next are final.
   */
  async fence(tps: TopicPartition[]): Promise<void> {
    const numbers = new Set(tps.filter((tp) => tp.topic !== this.deps.leaderTopic).map((tp) => tp.partition))
    await this.producers.fence([...numbers])
  }

  /** How many transactional producers this worker holds, and by which model. */
  producerCount(): { model: 'partition' | 'worker'; producers: number } {
    return { model: this.producers.model, producers: this.producers.count() }
  }

  /** The partition number no longer belongs here: its buffered outputs go (and its producer, per partition). */
  async release(p: number): Promise<void> {
    this.outputs.delete(p)
    // A pause outlives the assignment in some clients: the partition's next owner must fetch.
    const held = this.held.get(p)
    if (held && this.held.delete(p)) this.deps.resume(held)
    await this.producers.release(p)
  }

  /** Closes every producer (stop); an open transaction is aborted by the broker. */
  async closeAll(): Promise<void> {
    await this.producersMade?.closeAll()
  }

  /** Closes every producer at once, failures ignored (abort). */
  abortAll(): Promise<unknown>[] {
    return this.producersMade?.abortAll() ?? []
  }

  /** The transaction an event's effects belong to (its partition number), if it has one. */
  transactionOf(e: StreamEvent<any, any> | undefined): number | undefined {
    const root = e?.root
    if (root?.delivery === undefined) return undefined
    return this.transactionOfRecord(root.topic, root.partition)
  }

  transactionOfRecord(topic: string, partition: number): number | undefined {
    return this.deps.partitions.has(topic, partition) && this.producers.has(partition) ? partition : undefined
  }

  /**
   * Buffers an output of an event for the transaction of partition number `p`; `source` is the
   * event's delivery, and the output is committed with the offset that covers it.
   */
  buffer(p: number, record: OutgoingRecord, source: Delivery | undefined): void {
    let list = this.outputs.get(p)
    if (!list) this.outputs.set(p, (list = []))
    list.push({ record, source })
    const limit = this.deps.settings.commitEvery
    if (++this.buffered >= limit) {
      this.buffered = 0
      this.deps.requestCommit()
    }
    // A commit is due at `limit`; twice that in one transaction means it could not take them.
    if (list.length >= 2 * limit && !this.held.has(p)) this.hold(p, list.length)
  }

  /** Back-pressure on one transaction: no new records of partition number `p` until it commits. */
  private hold(p: number, buffered: number): void {
    const tps = this.topicPartitionsOf(p)
    this.held.set(p, tps)
    this.deps.logger.warn(
      `exactly-once: the transaction of partition ${p} holds ${buffered} outputs and has not committed ` +
        '(an event of it is still in progress); fetching of partition ' +
        `${p} is paused until it commits, the other partitions go on`,
    )
    this.deps.pause(tps)
  }

  /** The assigned topic-partitions of transaction `p`. */
  private topicPartitionsOf(p: number): TopicPartition[] {
    const tps: TopicPartition[] = []
    for (const t of this.deps.partitions.values())
      if (t.tp.partition === p && t.tp.topic !== this.deps.leaderTopic && !t.revoked) tps.push(t.tp)
    return tps
  }

  /** The pull of an actor from `queue`: counts the events handed out, holds new ones back while a commit waits. */
  pullFrom(queue: EventQueue<StreamEvent<any, any>>): Pull {
    const handOut = (e: StreamEvent<any, any> | null): StreamEvent<any, any> | null | Promise<any> => {
      if (e === null) return null
      const gate = this.gate
      if (gate) return gate.then(() => handOut(e))
      this.handedOut++
      const k = e.delivery === undefined ? -1 : e.partition
      this.inHand.set(k, (this.inHand.get(k) ?? 0) + 1)
      e.handedOut = true
      e.handedOutIn = this.generation
      return e
    }
    return () => {
      const got = queue.take()
      return got instanceof Promise ? got.then(handOut) : (handOut(got) as ReturnType<Pull>)
    }
  }

  /** The event is no longer in an actor's hands (acked, or given back for a retry). */
  handBack(e: StreamEvent<any, any>): void {
    if (!e.handedOut) return
    e.handedOut = false
    const k = e.delivery === undefined ? -1 : e.partition
    const n = (this.inHand.get(k) ?? 1) - 1
    if (n === 0) this.inHand.delete(k)
    else this.inHand.set(k, n)
    if (e.handedOutIn < this.generation) {
      const old = (this.stuck.get(k) ?? 1) - 1
      if (old <= 0) this.stuck.delete(k)
      else this.stuck.set(k, old)
    }
    --this.handedOut
    if (this.quiesced !== undefined && this.onlyStuckInHand()) this.quiesced()
  }

  /** True when every event in an actor's hands was already in progress at the last commit's wait. */
  private onlyStuckInHand(): boolean {
    if (this.handedOut === 0) return true
    for (const [k, n] of this.inHand) if (n > (this.stuck.get(k) ?? 0)) return false
    return true
  }

  /**
   * An exactly-once commit. Holds new events back until every event handed to an actor is acked,
   * so that the snapshot taken then (offsets, outputs, table writes) belongs to whole events only;
   * lets the actors go on, then commits one transaction per partition number. Partition numbers
   * with events still in progress after the wait sit this commit out (offsets, outputs and table
   * writes alike): a stuck event holds its own transaction only.
   */
  async commit(): Promise<void> {
    const deps = this.deps
    let open!: () => void
    this.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    let snapshot: ReturnType<Transactions['snapshot']>
    try {
      if (!this.onlyStuckInHand()) {
        deps.flushBatches()
        const limit = Math.max(1000, deps.settings.commitIntervalMs)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, limit)
          timer.unref?.()
          this.quiesced = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.quiesced = undefined
      }
      if (deps.status.dead) return
      const busy = new Set(this.inHand.keys())
      this.stuck = new Map(this.inHand)
      this.generation++
      if (busy.size > 0) {
        const now = Date.now()
        const warn = now - this.lastQuiesceWarning > 60_000
        if (warn) this.lastQuiesceWarning = now
        // An event outside any transaction (a channel's) may have written any table partition.
        if (busy.has(-1)) {
          if (warn)
            deps.logger.warn(
              `exactly-once: ${this.handedOut} event(s) still in progress, one outside any transaction; the commit waits for the next interval`,
            )
          return
        }
        if (warn)
          deps.logger.warn(
            `exactly-once: events of partition(s) ${[...busy].sort((a, b) => a - b).join(', ')} still in progress; ` +
              'their transactions wait for the next interval, the others commit',
          )
      }
      snapshot = this.snapshot(busy)
    } finally {
      this.gate = undefined
      open()
    }
    const { batches, plain } = snapshot
    if (batches.size === 0 && plain.length === 0 && deps.pendingPlain() === 0) return
    const state = deps.sensors.onCommitInitiated()
    // Sends outside any event (timers, pages, startup) are not part of a transaction.
    const flushed = await deps.flushPlain(plain)
    let written: RecordMetadata[]
    try {
      written = await this.producers.commit(batches, deps.appId)
    } catch (err) {
      for (const ts of deps.tables.values()) ts.abortCommit()
      void this.failed(err)
      throw err
    }
    for (const ts of deps.tables.values()) await ts.completeCommit([...flushed, ...written])
    const offsets = [...batches.values()].flatMap((batch) => batch.offsets)
    for (const o of offsets) {
      deps.partitions.committed(o.topic, o.partition, o.offset)
      deps.sensors.onOffsets(o, { committed: o.offset })
    }
    deps.sensors.onCommitCompleted(state, offsets)
  }

  /** Synchronously: what each transaction commits, taken at a point where no event is half done. */
  private snapshot(busy: ReadonlySet<number>): {
    batches: Map<number, TransactionBatch>
    plain: OutgoingRecord[]
  } {
    const batches = new Map<number, TransactionBatch>()
    const batch = (p: number): TransactionBatch => {
      let b = batches.get(p)
      if (!b) batches.set(p, (b = { records: [], offsets: [] }))
      return b
    }
    for (const t of this.deps.partitions.values()) {
      if (t.committable > t.committed && this.producers.has(t.tp.partition) && !busy.has(t.tp.partition))
        batch(t.tp.partition).offsets.push({
          topic: t.tp.topic,
          partition: t.tp.partition,
          offset: t.committable,
        })
    }
    const outputs = this.outputs
    this.outputs = new Map()
    this.buffered = 0
    // A loop, not push(...records): spreading a large array overflows the call stack.
    for (const [p, buffered] of outputs) {
      if (busy.has(p)) {
        this.outputs.set(p, buffered)
        this.buffered += buffered.length
        continue
      }
      const list = batch(p).records
      let later: Buffered[] | undefined
      for (const b of buffered) {
        const s = b.source
        // Committed here only if this commit's offsets cover its event (see Buffered).
        if (s === undefined || s.offset < s.tracker.committable) list.push(b.record)
        else (later ??= []).push(b)
      }
      if (later !== undefined) {
        this.outputs.set(p, later)
        this.buffered += later.length
      }
    }
    // Their outputs are in this commit: fetch again.
    for (const [p, tps] of this.held) {
      if (busy.has(p)) continue
      this.held.delete(p)
      this.deps.resume(tps)
    }
    const plain: OutgoingRecord[] = []
    for (const ts of this.deps.tables.values()) {
      for (const r of ts.beginCommit(busy)) {
        if (r.partition !== undefined && this.producers.has(r.partition)) batch(r.partition).records.push(r)
        else plain.push(r)
      }
    }
    return { batches, plain }
  }

  /**
   * A transaction failed (fenced, aborted, timed out): nothing of it is visible. The worker's
   * state past the last commit cannot be trusted, so it rolls back the way a restart does: the
   * app aborts it and starts a new worker, which recovers the tables from the committed
   * changelogs and reads on from the committed offsets.
   */
  private async failed(err: unknown): Promise<void> {
    if (this.deps.status.dead) return
    this.deps.logger.error(
      isFenced(err)
        ? 'exactly-once: fenced by a newer worker for the same partitions; rolling back to the last commit and rejoining'
        : 'exactly-once: a transaction failed and was aborted; rolling back to the last commit and restarting',
      { err },
    )
    await this.deps.restart(err)
  }
}
