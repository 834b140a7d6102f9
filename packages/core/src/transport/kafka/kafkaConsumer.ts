/**
 * A group member over a kafkajs consumer: its lifecycle (start, stop, abort, crash, failure) and
 * the wiring of its parts. The rebalance protocol, delivery, commits and kafkajs options are not here.
 */
import type { Consumer, ConsumerConfig, ConsumerRunConfig, Kafka } from 'kafkajs'
import { deferred } from '../../base/deferred.js'
import { BrokerError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { decodeAssignmentData } from '../assignmentData.js'
import { handlerFailure } from '../handlerFailure.js'
import type {
  CommitOffset,
  ConsumerHandlers,
  ConsumerOptions,
  TopicPartition,
  TransportAdmin,
  TransportConsumer,
} from '../transport.js'
import { BatchDelivery } from './batchDelivery.js'
import type { ConsumerSettings } from './consumerConfig.js'
import { consumerSettings, kafkajsConsumerConfig, kafkajsRunConfig } from './consumerConfig.js'
import { copartitionedAssigner } from './copartitionedAssigner.js'
import { commitOffsets, committedOffsets } from './groupOffsets.js'
import { Heartbeat } from './heartbeat.js'
import { mayRetry, messageOf } from './kafkaErrors.js'
import { beforeEveryJoin, markAbortedRecords, receiveAssignmentUserData } from './kafkajsPatches.js'
import type { ConsumerPhase } from './rebalanceGuard.js'
import { RebalanceGuard } from './rebalanceGuard.js'

export interface KafkaConsumerDeps {
  /** A kafkajs client of its own: kafkajs caches committed offsets per client and group. */
  kafka: Kafka
  admin: TransportAdmin
  logger: Logger
  url: string
  consumerConfig: Partial<ConsumerConfig>
  runConfig: Partial<ConsumerRunConfig>
}

/**
 * A group member over a kafkajs consumer (`eachBatch`, manual offset resolution, no autocommit),
 * with the rebalance protocol of the `TransportConsumer` contract: revoke before rejoin and
 * assign before delivery ({@link RebalanceGuard}), backpressure and offset resolution
 * ({@link BatchDelivery}). Nothing is committed except through {@link commit}.
 */
export class KafkaConsumer implements TransportConsumer {
  private phase: ConsumerPhase = 'new'
  private consumer: Consumer | undefined
  private handlers: ConsumerHandlers | undefined
  private failure: unknown
  /** What the leader's last assignment said this member keeps standby copies of. */
  private placedStandbys: number[] | undefined
  private stopping: Promise<void> | undefined
  private readonly startedSignal = deferred()
  private readonly abortedSignal = deferred()
  private readonly settings: ConsumerSettings
  private readonly guard: RebalanceGuard
  private readonly delivery: BatchDelivery

  constructor(
    private readonly deps: KafkaConsumerDeps,
    private readonly options: ConsumerOptions,
  ) {
    this.settings = consumerSettings(options, deps.consumerConfig)
    // Callers who never await start() must not see an unhandled rejection.
    this.startedSignal.promise.catch(() => {})
    const heartbeat = new Heartbeat(this.settings.heartbeatInterval, this.abortedSignal.promise)
    const host = {
      groupId: this.settings.groupId,
      logger: deps.logger,
      phase: () => this.phase,
      handlers: () => this.handlers!,
      fail: (error: unknown, what: string) => this.fail(error, what),
      assigned: () => this.startedSignal.resolve(),
      pause: (partitions: TopicPartition[]) => this.kafkaPause(partitions),
      resume: (partitions: TopicPartition[]) => this.kafkaResume(partitions),
    }
    this.guard = new RebalanceGuard(host, heartbeat)
    this.delivery = new BatchDelivery(host, this.guard, heartbeat, this.settings.maxBatchSize)
  }

  async start(topics: string[], handlers: ConsumerHandlers): Promise<void> {
    const { groupId } = this.settings
    if (this.phase !== 'new') {
      throw new BrokerError(
        `Consumer of group "${groupId}" was already started; create a new consumer to join again.`,
      )
    }
    this.phase = 'running'
    this.handlers = handlers
    const unique = [...new Set(topics)]
    const existing = new Set(await this.deps.admin.listTopics())
    const missing = unique.filter((t) => !existing.has(t))
    if (missing.length > 0) {
      this.phase = 'stopped'
      throw new BrokerError(
        `Cannot subscribe group "${groupId}" to missing topic(s) ${missing.map((t) => `"${t}"`).join(', ')} ` +
          `on ${this.deps.url}: create them first (admin.ensureTopics).`,
      )
    }
    const assigner = copartitionedAssigner({
      onCluster: (cluster) => {
        beforeEveryJoin(cluster, () => this.guard.beforeJoin())
        markAbortedRecords(cluster)
        receiveAssignmentUserData(cluster, (userData) => {
          this.placedStandbys = decodeAssignmentData(userData)
        })
      },
      // Sticky: the leader keeps what this member holds, and its standby copies, where they are.
      owned: () => this.guard.lastHeld(),
      standby: () => this.placedStandbys ?? [],
      standbyReplicas: this.options.standbyReplicas ?? 0,
    })
    const consumer = this.deps.kafka.consumer(
      kafkajsConsumerConfig(this.deps.consumerConfig, groupId, (error) => this.mayRestart(error), assigner),
    )
    this.consumer = consumer
    const { GROUP_JOIN, CRASH } = consumer.events
    consumer.on(GROUP_JOIN, (event) => this.guard.onGroupJoin(event.payload.memberAssignment))
    consumer.on(CRASH, (event) => this.onCrash(event.payload.error, event.payload.restart))
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: unique, fromBeginning: this.options.fromBeginning ?? true })
      await consumer.run(kafkajsRunConfig(this.deps.runConfig, (payload) => this.delivery.eachBatch(payload)))
    } catch (error) {
      this.phase = 'failed'
      this.failure = error
      await consumer.disconnect().catch(() => {})
      throw new BrokerError(
        `Consumer of group "${groupId}" could not start on ${this.deps.url}: ${messageOf(error)}`,
        { cause: error, retriable: mayRetry(error) },
      )
    }
    await this.startedSignal.promise
  }

  commit(offsets: CommitOffset[]): Promise<void> {
    const phase = this.phase
    return commitOffsets(
      {
        groupId: this.settings.groupId,
        url: this.deps.url,
        consumer: this.consumer,
        member: this.guard.member && phase !== 'stopped' && phase !== 'aborted' && phase !== 'failed',
        failure: this.failure,
        mayCommit: (key) => this.guard.mayCommit(key),
      },
      offsets,
    )
  }

  /** See {@link committedOffsets} for `stable`. */
  committed(partitions: TopicPartition[], options: { stable?: boolean } = {}): Promise<CommitOffset[]> {
    return committedOffsets(this.deps.admin, this.settings.groupId, partitions, options.stable ?? false)
  }

  /** The standby copies the group leader placed here (undefined before the first assignment). */
  standbys(): number[] | undefined {
    return this.placedStandbys === undefined ? undefined : [...this.placedStandbys]
  }

  seek(offsets: CommitOffset[]): void {
    const consumer = this.consumer
    if (consumer === undefined) return
    for (const { topic, partition, offset } of offsets)
      consumer.seek({ topic, partition, offset: String(offset) })
  }

  pause(partitions: TopicPartition[]): void {
    this.guard.pause(partitions)
  }

  resume(partitions: TopicPartition[]): void {
    this.guard.resume(partitions)
  }

  assignment(): TopicPartition[] {
    return this.guard.assignment()
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  async abort(): Promise<void> {
    if (this.phase === 'aborted' || this.phase === 'stopped') return
    this.phase = 'aborted'
    this.guard.member = false
    this.abortedSignal.resolve()
    this.startedSignal.resolve()
    // kafkajs cannot drop its sockets without leaving the group: the partitions move at once
    // rather than after the session timeout. Nothing is revoked, drained or committed.
    await this.consumer?.disconnect().catch(() => {})
  }

  private async doStop(): Promise<void> {
    if (this.phase === 'aborted' || this.phase === 'stopped') return
    const failed = this.phase === 'failed'
    if (!failed) {
      this.phase = 'stopping'
      await this.guard.assigning
      await this.guard.revokeAll()
    }
    this.guard.member = false
    await this.consumer?.disconnect().catch((error: unknown) => {
      this.deps.logger.warn(`kafka consumer of group "${this.settings.groupId}" did not disconnect cleanly`, {
        err: error,
      })
    })
    if (this.phase !== 'failed') this.phase = 'stopped'
    this.startedSignal.resolve()
    if (this.failure !== undefined) throw this.failure
  }

  /**
   * Whether kafkajs may restart its consumer after a crash: only while this one runs (and the
   * user's `restartOnFailure`, if any, agrees). kafkajs schedules the restart after the crash
   * even when disconnect() was called meanwhile, and the consumer of a stopped or aborted worker
   * would then rejoin the group after a broker outage and take partitions that nobody reads.
   */
  private async mayRestart(error: Error): Promise<boolean> {
    if (this.phase !== 'running') return false
    const user = this.deps.consumerConfig.retry?.restartOnFailure
    return user ? await user(error) : true
  }

  private onCrash(error: Error, restart: boolean): void {
    this.guard.member = false
    if (this.phase !== 'running') return
    if (restart) {
      // kafkajs left the group and rejoins after a backoff; the partitions held are revoked
      // (without a commit, which is refused) before that rejoin, in the guard's beforeJoin.
      this.deps.logger.warn(
        `kafka consumer of group "${this.settings.groupId}" crashed and restarts: ${error.message}. ` +
          'Work not committed is delivered again.',
      )
      return
    }
    this.fail(error, 'the kafkajs consumer')
  }

  /** A handler failed: like the memory broker, the member leaves as if it had crashed. */
  private fail(error: unknown, what: string): void {
    if (this.phase === 'failed' || this.phase === 'aborted' || this.phase === 'stopped') return
    const failure = handlerFailure(error, what, this.settings.groupId)
    this.deps.logger.error(
      `${what} of the consumer of group "${this.settings.groupId}" failed; it left the group`,
      {
        err: error,
      },
    )
    this.failure = failure
    this.phase = 'failed'
    this.guard.member = false
    this.abortedSignal.resolve()
    this.startedSignal.reject(failure)
    void this.consumer?.disconnect().catch(() => {})
    try {
      this.handlers?.onLost?.(failure)
    } catch {}
  }

  private kafkaPause(partitions: TopicPartition[]): void {
    if (partitions.length > 0) this.consumer?.pause(grouped(partitions))
  }

  private kafkaResume(partitions: TopicPartition[]): void {
    if (partitions.length === 0) return
    try {
      this.consumer?.resume(grouped(partitions))
    } catch {
      // The kafkajs consumer stopped meanwhile; there is nothing left to resume.
    }
  }
}

/** Partitions as kafkajs' pause and resume take them: grouped by topic. */
function grouped(partitions: TopicPartition[]): { topic: string; partitions: number[] }[] {
  const byTopic = new Map<string, number[]>()
  for (const { topic, partition } of partitions) {
    let list = byTopic.get(topic)
    if (list === undefined) byTopic.set(topic, (list = []))
    list.push(partition)
  }
  return [...byTopic].map(([topic, list]) => ({ topic, partitions: list }))
}
