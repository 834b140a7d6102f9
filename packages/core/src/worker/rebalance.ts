/**
 * Rebalances: what the worker does when the group gives it partitions (fence them under
 * exactly-once, read their committed offsets, recover their table shards before any event is
 * processed) and when it takes them away (drop their queued events, let events in progress finish
 * within `drainTimeoutMs`, commit, release the table shards). Also leadership of the app (the
 * leader topic's one partition) and standby replicas, which follow the shards owned elsewhere.
 */
import type { Logger } from '../base/logger.js'
import type { TopicPartition } from '../base/topicPartition.js'
import { tpKey } from '../base/topicPartition.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import type { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { Transport, TransportConsumer } from '../transport/transport.js'
import type { Committer } from './committer.js'
import type { Conductor } from './conductor.js'
import type { PartitionHooks, WorkerSettings } from './host.js'
import type { Jobs } from './jobs.js'
import type { AssignedPartitions, PartitionTracker } from './partitions.js'
import type { WorkerStatus } from './state.js'
import type { Transactions } from './transactions.js'

export interface RebalanceDeps {
  readonly settings: WorkerSettings
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly status: WorkerStatus
  readonly transport: Transport
  readonly partitions: AssignedPartitions
  readonly tables: ReadonlyMap<Table<any, any>, TableState<any, any>>
  readonly conductor: Conductor
  readonly committer: Committer
  /** Exactly-once only. */
  readonly transactions: Transactions | undefined
  readonly leaderTopic: string
  /** The app's `onPartitionsAssigned` / `onPartitionsRevoked` hooks. */
  readonly hooks: PartitionHooks
  consumer(): TransportConsumer | undefined
  /** This worker has just become the group's leader. */
  becameLeader(): void
  /** Actors holding a partial `take()` batch hand it over. */
  flushBatches(): void
}

export class Rebalance {
  /** This worker holds the leader topic's partition: the one worker of the group that leads. */
  leader = false

  constructor(private readonly deps: RebalanceDeps) {}

  async onAssign(tps: TopicPartition[]): Promise<void> {
    const { sensors, transactions, leaderTopic, partitions } = this.deps
    const consumer = this.deps.consumer()
    const state = sensors.onAssignmentStart(tps)
    try {
      if (transactions && consumer) await transactions.fence(tps)
      // Stable under exactly-once: the fenced owner's last transaction may still be applying its offsets.
      const committed = consumer ? await consumer.committed(tps, { stable: transactions !== undefined }) : []
      if (transactions && consumer?.seek) {
        // Read after the fence: the previous owner's last transaction is settled by now, while
        // the position the client resolved on joining may predate it.
        consumer.seek(committed.filter((c) => c.offset >= 0 && c.topic !== leaderTopic))
      }
      const committedBy = new Map(committed.map((c) => [tpKey(c.topic, c.partition), c.offset]))
      const numbers = new Set<number>()
      for (const tp of tps) {
        if (tp.topic === leaderTopic) {
          this.leader = true
          this.deps.becameLeader()
          continue
        }
        partitions.add(tp, committedBy.get(tpKey(tp.topic, tp.partition)) ?? -1)
        numbers.add(tp.partition)
      }
      await this.recoverTables([...numbers])
      await this.runHooks('onPartitionsAssigned', this.deps.hooks.assigned, tps)
      sensors.onAssignmentCompleted(state, tps)
    } catch (err) {
      sensors.onAssignmentError(state, err)
      throw err
    }
  }

  /** Awaits the app's hooks one by one with the partitions of its topics (not the leader topic's). */
  private async runHooks(
    name: string,
    hooks: readonly ((partitions: TopicPartition[]) => unknown)[],
    tps: TopicPartition[],
  ): Promise<void> {
    const mine = tps.filter((tp) => tp.topic !== this.deps.leaderTopic)
    if (hooks.length === 0 || mine.length === 0) return
    for (const hook of hooks) {
      try {
        await hook(mine)
      } catch (err) {
        this.deps.logger.error(`${name} hook failed; the partitions are processed all the same`, { err })
      }
    }
  }

  /**
   * Recovers the given partitions (`null`: all) of every table that it does not own yet, tables
   * side by side and partitions in parallel within each (TableState.recoverMany).
   */
  async recoverTables(numbers: readonly number[] | null): Promise<void> {
    await Promise.all(
      [...this.deps.tables].map(async ([table, ts]) => {
        // recoverMany skips the partitions the table already owns.
        // A global table: every partition, on every worker.
        const all = numbers === null || ts.table.options.global === true
        const mine = all
          ? Array.from({ length: ts.table.partitions }, (_, p) => p)
          : numbers.filter((p) => p < ts.table.partitions)
        const fresh = mine.filter((p) => !ts.owns(p))
        const replayed = await ts.recoverMany(this.deps.transport, mine)
        mine.forEach((p, i) => {
          if (replayed[i]! > 0)
            this.deps.logger.info(`recovered table ${ts.table.name}[${p}]`, { records: replayed[i] })
        })
        const onRecover = table.options.onRecover
        if (onRecover && fresh.length > 0) {
          try {
            await onRecover(fresh)
          } catch (err) {
            this.deps.logger.error(
              `table ${table.name}: onRecover failed; its partitions are processed all the same`,
              {
                err,
              },
            )
          }
        }
      }),
    )
  }

  async onRevoke(tps: TopicPartition[]): Promise<void> {
    const { sensors, partitions, status, logger, leaderTopic } = this.deps
    const state = sensors.onRebalanceStart(tps)
    const revoked = new Set<string>()
    const draining: PartitionTracker[] = []
    for (const tp of tps) {
      if (tp.topic === leaderTopic) this.leader = false
      const t = partitions.get(tp.topic, tp.partition)
      if (t) {
        t.revoked = true
        revoked.add(tpKey(tp.topic, tp.partition))
        draining.push(t)
      }
    }
    // Queued events of revoked partitions are not processed here: the next owner gets them
    // again from the committed offset. Events already in an actor's hands are let finish.
    this.deps.conductor.dropQueued(revoked)
    this.deps.flushBatches()
    const deadline = Date.now() + this.deps.settings.drainTimeoutMs
    for (;;) {
      let inFlight = 0
      for (const t of draining) inFlight += Math.max(0, t.inFlight)
      if (inFlight === 0 || status.state === 'crashed') break
      if (Date.now() > deadline) {
        logger.warn(
          `rebalance: ${inFlight} event(s) still in progress after the drain timeout; committing what is done`,
        )
        break
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    try {
      if (status.state !== 'crashed') await this.deps.committer.commit()
    } catch (err) {
      // Lost partitions refuse commits (the group moved on): their events are redelivered to
      // the next owner. Release them all the same, or every later commit would fail on them.
      logger.warn('rebalance: the commit of revoked partitions failed; they will be redelivered', { err })
    } finally {
      for (const t of draining) partitions.delete(t.tp.topic, t.tp.partition)
      // Release table partitions no topic of ours is assigned any more.
      const still = partitions.partitionNumbers()
      const released = new Set(tps.map((tp) => tp.partition).filter((p) => !still.has(p)))
      for (const ts of this.deps.tables.values()) {
        if (ts.table.options.global) continue
        for (const p of released) if (ts.owns(p)) await ts.release(p)
      }
      for (const p of released) await this.deps.transactions?.release(p)
      await this.runHooks('onPartitionsRevoked', this.deps.hooks.revoked, tps)
      sensors.onRebalanceEnd(state)
    }
  }

  /**
   * Every `standbyIntervalMs`: standby copies follow the partitions owned elsewhere, and global
   * tables take in what the other workers wrote.
   */
  scheduleFollowing(
    jobs: Jobs,
    states: TableState<any, any>[],
    consumer: TransportConsumer | undefined,
  ): void {
    const every = this.deps.settings.standbyIntervalMs
    const standbys = states.filter((ts) => (ts.table.options.standbyReplicas ?? 0) > 0)
    if (standbys.length > 0 && consumer)
      jobs.every(every, 'standby replicas', () => this.followStandbys(standbys))
    const globals = states.filter((ts) => ts.table.options.global === true)
    if (globals.length > 0) jobs.every(every, 'global tables', () => this.refreshGlobalTables(globals))
  }

  /** Global tables take in what the other workers wrote (every partition, owned by all). */
  async refreshGlobalTables(states: TableState<any, any>[]): Promise<void> {
    for (const ts of states) {
      for (let p = 0; p < ts.table.partitions; p++) {
        if (this.deps.status.state !== 'running') return
        if (ts.owns(p)) await ts.refresh(this.deps.transport, p)
      }
    }
  }

  /**
   * Standby replicas: keeps a copy of every table partition this worker does not own, following
   * its changelog, so taking one over after a failover replays only what the copy lacks.
   */
  /**
   * Brings standby copies up to date: the partition numbers the group placed here when the
   * transport places standbys, else every partition this worker does not own.
   */
  async followStandbys(states: TableState<any, any>[]): Promise<void> {
    const placed = this.deps.consumer()?.standbys?.()
    const mine = placed === undefined ? undefined : new Set(placed)
    for (const ts of states) {
      for (let p = 0; p < ts.table.partitions; p++) {
        if (this.deps.status.state !== 'running') return
        if (!ts.owns(p) && (mine === undefined || mine.has(p))) await ts.follow(this.deps.transport, p)
      }
    }
  }
}
