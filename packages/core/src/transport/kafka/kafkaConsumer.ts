import type {
  Broker,
  Cluster,
  Consumer,
  ConsumerConfig,
  ConsumerRunConfig,
  EachBatchPayload,
  Kafka,
} from 'kafkajs'
import type { Logger } from '../../base/logger.js'
import { BrokerError, MephistoError } from '../../base/errors.js'
import type {
  CommitOffset,
  ConsumerHandlers,
  ConsumerOptions,
  RawRecord,
  RecordBatch,
  TopicPartition,
  TransportAdmin,
  TransportConsumer,
} from '../transport.js'
import type { AbortedTransaction, FetchedMessage } from './abortedFilter.js'
import { abortedFilter } from './abortedFilter.js'
import { copartitionedAssigner } from './copartitionedAssigner.js'
import { messageOf } from './kafkaAdmin.js'
import { toRawRecord } from './kafkaRecords.js'

const DEFAULT_MAX_BATCH_SIZE = 500
const DEFAULT_HEARTBEAT_INTERVAL = 3000
/** Batches of different partitions handled at once (kafkajs `partitionsConsumedConcurrently`). */
const DEFAULT_CONCURRENCY = 4

type Phase = 'new' | 'running' | 'stopping' | 'stopped' | 'aborted' | 'failed'

/** Set by {@link KafkaConsumer.dropAborted} on records of aborted transactions kafkajs let through. */
const ABORTED = Symbol('mephisto.abortedTransaction')

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`

/** kafkajs' own test for "the group moved on": its heartbeat and commits fail with these. */
function isRebalancing(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type
  return (
    type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION'
  )
}

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
 * with the rebalance protocol of the `TransportConsumer` contract:
 *
 * - Revoke before rejoin. kafkajs has no rebalance listener and rejoins on its own when a
 *   heartbeat says the group is rebalancing. Every (re)join starts by looking up the group
 *   coordinator on the consumer's `Cluster`, which the partition assigner receives; that lookup
 *   is wrapped to await `onRevoke(every assigned partition)` first. The runtime so drains and
 *   commits while the member still belongs to the old generation, and the group cannot hand the
 *   partitions to anyone before this member rejoins (eager rebalancing, as the Java client does).
 * - Assign before delivery. GROUP_JOIN fires before kafkajs fetches; a batch of a partition whose
 *   `onAssign` has not resolved waits in eachBatch (heartbeating) until it has, and is dropped as
 *   stale if `onAssign` moved the position (a seek).
 * - Backpressure. `onBatch` is awaited per partition; while it runs, the consumer heartbeats so a
 *   slow runtime does not lose its session, and a heartbeat that reports a rebalance starts the
 *   revoke at once rather than after the batch (the runtime's revoke is what unblocks the batch).
 * - Offsets. A batch's last offset is resolved once `onBatch` took it, which advances kafkajs'
 *   fetch position; nothing is committed except through {@link commit}.
 */
export class KafkaConsumer implements TransportConsumer {
  private phase: Phase = 'new'
  private consumer: Consumer | undefined
  private handlers: ConsumerHandlers | undefined
  /** Partitions of the current assignment (from GROUP_JOIN until revoked). */
  private readonly assigned = new Map<string, TopicPartition>()
  /** Assigned partitions whose onAssign resolved: only these are delivered. */
  private readonly ready = new Set<string>()
  /** Partitions whose onRevoke runs now: the runtime may still commit them. */
  private readonly revoking = new Set<string>()
  private readonly userPaused = new Set<string>()
  private assigning: Promise<unknown> | undefined
  private revocation: Promise<void> | undefined
  /** Bumped on every assignment and revocation, so a late onAssign does not resume stale partitions. */
  private generation = 0
  private assignedOnce = false
  /** True while kafkajs holds a live membership: commits mean something only then. */
  private member = false
  private heartbeat: (() => Promise<void>) | undefined
  private failure: unknown
  private stopping: Promise<void> | undefined
  private readonly startedSignal = deferred()
  private readonly abortedSignal = deferred()
  private readonly maxBatchSize: number
  private readonly heartbeatInterval: number

  constructor(
    private readonly deps: KafkaConsumerDeps,
    private readonly options: ConsumerOptions,
  ) {
    if (!options.groupId) throw new BrokerError('A consumer needs a non-empty groupId.')
    this.maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    if (!Number.isInteger(this.maxBatchSize) || this.maxBatchSize < 1) {
      throw new BrokerError(`maxBatchSize must be a whole number >= 1 (got ${this.maxBatchSize}).`)
    }
    this.heartbeatInterval = deps.consumerConfig.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL
    // Callers who never await start() must not see an unhandled rejection.
    this.startedSignal.promise.catch(() => {})
  }

  async start(topics: string[], handlers: ConsumerHandlers): Promise<void> {
    const { groupId } = this.options
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
    const consumer = this.deps.kafka.consumer({
      sessionTimeout: 30_000,
      rebalanceTimeout: 60_000,
      // kafkajs waits this long before fetching again when every partition is paused (backpressure),
      // and a stop waits for the fetch in progress: 5 s (its default) is slow.
      maxWaitTimeInMs: 500,
      ...this.deps.consumerConfig,
      retry: { ...this.deps.consumerConfig.retry, restartOnFailure: (error) => this.mayRestart(error) },
      groupId,
      // Kafka creates a missing topic on a metadata request unless told not to; the memory broker
      // never does, and a typo should fail rather than create a topic.
      allowAutoTopicCreation: false,
      partitionAssigners: [
        copartitionedAssigner((cluster) => {
          this.guardRejoin(cluster)
          this.dropAborted(cluster)
        }),
      ],
    })
    this.consumer = consumer
    const { GROUP_JOIN, CRASH } = consumer.events
    consumer.on(GROUP_JOIN, (event) => this.onGroupJoin(event.payload.memberAssignment))
    consumer.on(CRASH, (event) => this.onCrash(event.payload.error, event.payload.restart))
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: unique, fromBeginning: this.options.fromBeginning ?? true })
      await consumer.run({
        partitionsConsumedConcurrently: DEFAULT_CONCURRENCY,
        ...this.deps.runConfig,
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.eachBatch(payload),
      })
    } catch (error) {
      this.phase = 'failed'
      this.failure = error
      await consumer.disconnect().catch(() => {})
      throw new BrokerError(
        `Consumer of group "${groupId}" could not start on ${this.deps.url}: ${messageOf(error)}`,
        {
          cause: error,
        },
      )
    }
    await this.startedSignal.promise
  }

  async commit(offsets: CommitOffset[]): Promise<void> {
    const { groupId } = this.options
    const consumer = this.consumer
    if (consumer === undefined) {
      throw new BrokerError(
        `Cannot commit for group "${groupId}": the consumer has not started (start() joins the group).`,
      )
    }
    if (!this.member || this.phase === 'stopped' || this.phase === 'aborted' || this.phase === 'failed') {
      throw new MephistoError(
        'COMMIT_FAILED',
        `Commit refused: this consumer is no longer a member of group "${groupId}". Offsets can only ` +
          'be committed while the consumer runs; what was processed since the last commit is delivered again.',
        this.failure === undefined ? undefined : { cause: this.failure },
      )
    }
    for (const { topic, partition, offset } of offsets) {
      if (!Number.isInteger(offset) || offset < 0) {
        throw new BrokerError(
          `Commit refused: offset ${offset} for ${topic}[${partition}] is not a valid offset.`,
        )
      }
      const key = tpKey(topic, partition)
      // The broker does not check ownership; the memory broker does, and a zombie commit would
      // overwrite the progress of the partition's new owner.
      if (!this.assigned.has(key) && !this.revoking.has(key)) {
        throw new MephistoError(
          'COMMIT_FAILED',
          `Commit refused: ${topic}[${partition}] is not assigned to this consumer of group "${groupId}" ` +
            '(it was revoked or never assigned). Commit only partitions you own.',
        )
      }
    }
    if (offsets.length === 0) return
    try {
      await consumer.commitOffsets(offsets.map((o) => ({ ...o, offset: String(o.offset) })))
    } catch (error) {
      throw new MephistoError(
        'COMMIT_FAILED',
        `Commit for group "${groupId}" failed on ${this.deps.url}: ${messageOf(error)}` +
          (isRebalancing(error)
            ? ' (the group rebalanced without this member; its partitions moved on)'
            : ''),
        { cause: error },
      )
    }
  }

  /**
   * With `stable`, reads until two reads 100 ms apart agree (at most ten): Kafka applies a
   * committed transaction's offsets to the group a moment after its markers are written and
   * until then answers with the previous ones, so a worker that has just fenced the previous
   * owner would start from there and redo what that owner's last transaction committed. (An
   * OffsetFetch with `require_stable` would say so instead; kafkajs does not send it.)
   */
  async committed(partitions: TopicPartition[], options: { stable?: boolean } = {}): Promise<CommitOffset[]> {
    let last = await this.readCommitted(partitions)
    if (!options.stable) return last
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100))
      const next = await this.readCommitted(partitions)
      if (next.every((c, j) => c.offset === last[j]!.offset)) return next
      last = next
    }
    return last
  }

  private async readCommitted(partitions: TopicPartition[]): Promise<CommitOffset[]> {
    const byTopic = new Map<string, Map<number, number>>()
    for (const topic of new Set(partitions.map((p) => p.topic))) {
      byTopic.set(topic, await this.deps.admin.groupOffsets(this.options.groupId, topic))
    }
    return partitions.map(({ topic, partition }) => ({
      topic,
      partition,
      offset: byTopic.get(topic)?.get(partition) ?? -1,
    }))
  }

  seek(offsets: CommitOffset[]): void {
    const consumer = this.consumer
    if (consumer === undefined) return
    for (const { topic, partition, offset } of offsets)
      consumer.seek({ topic, partition, offset: String(offset) })
  }

  pause(partitions: TopicPartition[]): void {
    const toPause: TopicPartition[] = []
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      if (!this.assigned.has(key)) continue
      this.userPaused.add(key)
      toPause.push(tp)
    }
    this.kafkaPause(toPause)
  }

  resume(partitions: TopicPartition[]): void {
    const toResume: TopicPartition[] = []
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      if (!this.userPaused.delete(key)) continue
      // A partition still waiting for onAssign stays paused; onAssign resumes it.
      if (this.ready.has(key)) toResume.push(tp)
    }
    this.kafkaResume(toResume)
  }

  assignment(): TopicPartition[] {
    return sortPartitions([...this.assigned.values()])
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  async abort(): Promise<void> {
    if (this.phase === 'aborted' || this.phase === 'stopped') return
    this.phase = 'aborted'
    this.member = false
    this.abortedSignal.resolve()
    this.startedSignal.resolve()
    // kafkajs cannot drop its sockets without leaving the group: the partitions move at once
    // rather than after the session timeout. Nothing is revoked, drained or committed.
    await this.consumer?.disconnect().catch(() => {})
  }

  // ---- rebalance protocol ---------------------------------------------------------------------

  private async doStop(): Promise<void> {
    if (this.phase === 'aborted' || this.phase === 'stopped') return
    const failed = this.phase === 'failed'
    if (!failed) {
      this.phase = 'stopping'
      await this.assigning
      await this.revokeAll()
    }
    this.member = false
    await this.consumer?.disconnect().catch((error: unknown) => {
      this.deps.logger.warn(`kafka consumer of group "${this.options.groupId}" did not disconnect cleanly`, {
        err: error,
      })
    })
    if (this.phase !== 'failed') this.phase = 'stopped'
    this.startedSignal.resolve()
    if (this.failure !== undefined) throw this.failure
  }

  /** Wraps the coordinator lookup that starts every (re)join, see the class comment. */
  private guardRejoin(cluster: Cluster): void {
    const lookup = cluster.findGroupCoordinator.bind(cluster)
    cluster.findGroupCoordinator = async (group) => {
      if (this.assigned.size > 0 || this.revocation !== undefined) await this.keepAlive(this.revokeAll())
      return lookup(group)
    }
  }

  /**
   * Marks the records of aborted transactions in every fetch response of this consumer, by the
   * rule kafkajs' own filter gets wrong when transactions interleave (see {@link abortedFilter});
   * eachBatch skips them. The response itself is left as it is: kafkajs moves its position past
   * what it fetched, aborted records included.
   */
  private dropAborted(cluster: Cluster): void {
    const find = cluster.findBroker.bind(cluster)
    const wrapped = new WeakSet<Broker>()
    cluster.findBroker = async (node) => {
      const broker = await find(node)
      if (wrapped.has(broker)) return broker
      wrapped.add(broker)
      const fetch = broker.fetch.bind(broker)
      broker.fetch = async (request) => {
        const response = (await fetch(request)) as {
          responses?: {
            partitions?: { abortedTransactions?: AbortedTransaction[]; messages?: FetchedMessage[] }[]
          }[]
        }
        for (const topic of response.responses ?? []) {
          for (const p of topic.partitions ?? []) {
            if (!p.abortedTransactions?.length || !p.messages) continue
            const isAborted = abortedFilter(p.abortedTransactions)
            for (const m of p.messages) {
              if (isAborted(m) && !m.isControlRecord)
                (m as unknown as Record<symbol, boolean>)[ABORTED] = true
            }
          }
        }
        return response
      }
      return broker
    }
  }

  /** Revokes every assigned partition (once, however many callers ask); resolves when onRevoke did. */
  private revokeAll(): Promise<void> {
    if (this.revocation !== undefined) return this.revocation
    const partitions = sortPartitions([...this.assigned.values()])
    if (partitions.length === 0 || this.phase === 'aborted' || this.phase === 'failed')
      return Promise.resolve()
    const keys = partitions.map((tp) => tpKey(tp.topic, tp.partition))
    this.generation++
    this.assigned.clear()
    this.ready.clear()
    for (const key of keys) {
      this.revoking.add(key)
      this.userPaused.delete(key)
    }
    const lost = !this.member
    const pending = this.assigning
    this.revocation = (async () => {
      try {
        // Rebalance handlers never overlap: an onAssign in progress finishes first.
        await pending
        await this.handlers!.onRevoke(partitions)
      } catch (error) {
        if (lost) {
          // The membership was lost before (kafkajs crashed and restarts): the runtime could
          // not commit, which is expected; its uncommitted work is redelivered to the new owner.
          this.deps.logger.warn(
            `partitions of group "${this.options.groupId}" were lost: ${messageOf(error)}`,
          )
        } else this.fail(error, 'onRevoke')
      } finally {
        for (const key of keys) this.revoking.delete(key)
        this.revocation = undefined
      }
    })()
    return this.revocation
  }

  /** GROUP_JOIN fires synchronously before kafkajs fetches anything of the new assignment. */
  private onGroupJoin(memberAssignment: Record<string, number[]>): void {
    if (this.phase !== 'running') {
      // Joined while stopping: deliver nothing, the disconnect in progress leaves the group.
      this.kafkaPause(flatten(memberAssignment))
      return
    }
    if (this.assigned.size > 0) {
      // Not expected (every join passes guardRejoin), but never deliver without revoking.
      this.deps.logger.warn(`group "${this.options.groupId}" rejoined without a revoke; revoking now`)
      void this.revokeAll()
    }
    this.member = true
    const partitions = sortPartitions(flatten(memberAssignment))
    const generation = ++this.generation
    for (const tp of partitions) this.assigned.set(tpKey(tp.topic, tp.partition), tp)
    // Not paused while onAssign runs: kafkajs fetches at once, and eachBatch holds what arrives
    // until onAssign resolved (a seek made there drops it as stale). Pausing every partition made
    // kafkajs sleep its whole maxWaitTime before the first fetch: half a second at every start.
    if (partitions.length === 0 && this.assignedOnce) return
    const previous = this.revocation
    this.assigning = (async () => {
      try {
        await previous
        await this.handlers!.onAssign(partitions)
      } catch (error) {
        this.fail(error, 'onAssign')
        return
      }
      this.assignedOnce = true
      this.startedSignal.resolve()
      if (generation !== this.generation || this.phase !== 'running') return
      const resume: TopicPartition[] = []
      for (const tp of partitions) {
        const key = tpKey(tp.topic, tp.partition)
        this.ready.add(key)
        if (!this.userPaused.has(key)) resume.push(tp)
      }
      this.kafkaResume(resume)
    })()
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
    this.member = false
    if (this.phase !== 'running') return
    if (restart) {
      // kafkajs left the group and rejoins after a backoff; the partitions held are revoked
      // (without a commit, which is refused) before that rejoin, in guardRejoin.
      this.deps.logger.warn(
        `kafka consumer of group "${this.options.groupId}" crashed and restarts: ${error.message}. ` +
          'Work not committed is delivered again.',
      )
      return
    }
    this.fail(error, 'the kafkajs consumer')
  }

  // ---- delivery -------------------------------------------------------------------------------

  private async eachBatch({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    this.heartbeat ??= heartbeat
    const { topic, partition } = batch
    const key = tpKey(topic, partition)
    if (!this.ready.has(key) && this.assigned.has(key) && this.assigning !== undefined) {
      // Fetched while onAssign runs (tables recovering): hold it until the partition is ready.
      await this.keepAlive(this.assigning)
    }
    const highWatermark = Number(batch.highWatermark)
    const messages = batch.messages
    for (let i = 0; i < messages.length; i += this.maxBatchSize) {
      if (!this.deliverable(key) || !isRunning() || isStale()) return
      const chunk =
        i === 0 && messages.length <= this.maxBatchSize ? messages : messages.slice(i, i + this.maxBatchSize)
      const records: RawRecord[] = []
      for (const m of chunk) {
        if ((m as unknown as Record<symbol, boolean>)[ABORTED] !== true)
          records.push(toRawRecord(topic, partition, m))
      }
      if (records.length === 0) {
        resolveOffset(chunk[chunk.length - 1]!.offset)
        continue
      }
      const batchOut: RecordBatch = { topic, partition, records, highWatermark }
      const taken = this.handlers!.onBatch(batchOut).then(
        () => true,
        (error: unknown) => {
          this.fail(error, `onBatch(${topic}[${partition}])`)
          return false
        },
      )
      if (!(await this.keepAlive(taken, true))) return
      // The next fetch of this partition starts after what the runtime has taken.
      resolveOffset(chunk[chunk.length - 1]!.offset)
    }
  }

  private deliverable(key: string): boolean {
    return this.phase === 'running' && this.ready.has(key) && !this.userPaused.has(key)
  }

  /**
   * Awaits `work` while heartbeating every `heartbeatInterval`, so a slow handler does not cost the
   * session. Resolves early (to false) when the consumer is aborted: a crashed worker's handlers
   * may never finish. With `revokeOnRebalance`, a heartbeat that finds the group rebalancing
   * starts the revoke now (see the class comment).
   */
  private async keepAlive<T>(work: Promise<T>, revokeOnRebalance = false): Promise<T | false> {
    const timer = setInterval(() => {
      this.heartbeat?.().catch((error: unknown) => {
        if (revokeOnRebalance && isRebalancing(error)) void this.revokeAll()
      })
    }, this.heartbeatInterval)
    try {
      return await Promise.race([work, this.abortedSignal.promise.then(() => false as const)])
    } finally {
      clearInterval(timer)
    }
  }

  /** A handler failed: like the memory broker, the member leaves as if it had crashed. */
  private fail(error: unknown, what: string): void {
    if (this.phase === 'failed' || this.phase === 'aborted' || this.phase === 'stopped') return
    const failure = new BrokerError(
      `${what} of the consumer of group "${this.options.groupId}" failed: ${messageOf(error)}. ` +
        'The consumer left the group as if it had crashed; its partitions go to the other members from ' +
        'their committed offsets. Handlers must not throw: handle errors inside them.',
      { cause: error },
    )
    this.deps.logger.error(failure.message, { err: error })
    this.failure = failure
    this.phase = 'failed'
    this.member = false
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

function flatten(assignment: Record<string, number[]>): TopicPartition[] {
  return Object.entries(assignment).flatMap(([topic, partitions]) =>
    partitions.map((partition) => ({ topic, partition })),
  )
}

function grouped(partitions: TopicPartition[]): { topic: string; partitions: number[] }[] {
  const byTopic = new Map<string, number[]>()
  for (const { topic, partition } of partitions) {
    let list = byTopic.get(topic)
    if (list === undefined) byTopic.set(topic, (list = []))
    list.push(partition)
  }
  return [...byTopic].map(([topic, list]) => ({ topic, partitions: list }))
}

function sortPartitions(partitions: TopicPartition[]): TopicPartition[] {
  return partitions.sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
  )
}

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (error: unknown) => void
}

function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
