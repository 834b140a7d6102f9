import { BrokerError, ConfigurationError, MephistoError, TransactionError } from '../../base/errors.js'
import type {
  CommitOffset,
  ConsumerHandlers,
  Headers,
  RawRecord,
  TopicPartition,
  TopicSpec,
} from '../transport.js'

/**
 * An in-process Kafka: topics of partitioned logs, offsets, compaction and consumer groups with
 * co-partitioned assignment and rebalances. `memory://` transports and the testkit run on it.
 *
 * It never uses timers: delivery is driven by appends and handler completions only, so it runs
 * the same under a fake clock. Records handed to consumers are the broker's own objects: treat
 * them (and their buffers and headers) as read-only.
 */

/** A compacted partition compacts itself once it holds more records than this... */
const AUTO_COMPACT_MIN_RECORDS = 1000
/** ...and has grown this many times over since the last compaction (amortised O(1) per append). */
const AUTO_COMPACT_GROWTH = 2

const DEFAULT_MAX_BATCH_SIZE = 500

/**
 * Shared by every record appended without headers: one object less per record halves what an
 * append allocates. Frozen, as records are read-only anyway.
 */
const NO_HEADERS: Headers = Object.freeze({})

export interface MemoryBrokerOptions {
  /** The `<name>` of `memory://<name>`. Default: `'private'`. */
  name?: string
  /**
   * The broker's clock: the timestamp of appended records that carry none, and the age of
   * tombstones for `delete.retention.ms`. Default: `Date.now`.
   */
  now?: () => number
}

/** A record to append; `OutgoingRecord` fits (its topic and partition are ignored). */
export interface AppendRecord {
  key: Buffer | null
  value: Buffer | null
  headers?: Headers
  timestamp?: number
}

export interface JoinOptions {
  /** Where a partition without a committed offset starts. Default: `true` (the log start). */
  fromBeginning?: boolean
  /** Most records per `onBatch`. Default: 500. */
  maxBatchSize?: number
}

/** One partition's log. Offsets are kept through compaction, so the log may become sparse. */
class PartitionLog {
  records: RawRecord[] = []
  /** The first available offset: the first record's, or `endOffset` when the log is empty. */
  startOffset = 0
  /** The next offset to be written (the high watermark). */
  endOffset = 0
  /** While `records[i].offset === startOffset + i`, lookups are O(1); after compaction they bisect. */
  dense = true
  /** Records held right after the last compaction, to decide when to compact again. */
  sizeAfterCompaction = 0
  /** Fetchers caught up with this log, woken by the next append. */
  waiters = new Set<Fetcher>()

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  /** Index of the first record whose offset is `>= offset`. */
  indexOf(offset: number): number {
    const records = this.records
    if (this.dense) {
      const i = offset - this.startOffset
      return i <= 0 ? 0 : Math.min(i, records.length)
    }
    let lo = 0
    let hi = records.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (records[mid]!.offset < offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Up to `max` records with offsets in `[from, to)`, in offset order. */
  read(from: number, to: number, max: number): RawRecord[] {
    const records = this.records
    const first = this.indexOf(from)
    let last = first + max
    if (last > records.length) last = records.length
    if (to < this.endOffset) {
      const bound = this.indexOf(to)
      if (bound < last) last = bound
    }
    return first < last ? records.slice(first, last) : []
  }

  wakeWaiters(): void {
    // Waking only resolves promises: fetchers run on a later microtask, never inside `append`.
    for (const fetcher of this.waiters) fetcher.wake()
    this.waiters.clear()
  }
}

class Topic {
  readonly partitions: PartitionLog[]
  readonly compacted: boolean
  /** `delete.retention.ms`: how long a tombstone survives compaction. Unset: forever. */
  readonly tombstoneRetentionMs: number | undefined

  constructor(readonly spec: TopicSpec) {
    this.partitions = Array.from({ length: spec.partitions }, (_, p) => new PartitionLog(spec.name, p))
    const policy = spec.config?.['cleanup.policy']
    this.compacted = spec.compacted === true || policy?.split(',').includes('compact') === true
    const retention = spec.config?.['delete.retention.ms']
    this.tombstoneRetentionMs = retention === undefined ? undefined : Number(retention)
  }
}

/** Delivers one assigned partition to one member: fetch, await `onBatch`, repeat; sleep when caught up. */
class Fetcher {
  position = 0
  paused = false
  stopped = false
  private wakeUp: (() => void) | null = null

  constructor(
    readonly member: Member,
    readonly log: PartitionLog,
  ) {}

  start(position: number): void {
    this.position = position
    void this.run()
  }

  wake(): void {
    const wakeUp = this.wakeUp
    if (wakeUp !== null) {
      this.wakeUp = null
      wakeUp()
    }
  }

  stop(): void {
    this.stopped = true
    this.log.waiters.delete(this)
    this.wake()
  }

  /** True when this fetcher has nothing left to deliver right now. */
  caughtUp(): boolean {
    return this.stopped || this.paused || this.position >= this.log.endOffset
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve
    })
  }

  private async run(): Promise<void> {
    const log = this.log
    const member = this.member
    const { topic, partition } = log
    while (!this.stopped) {
      if (this.paused) {
        await this.sleep()
        continue
      }
      const end = log.endOffset
      // Out of range (the log was recreated or a committed offset points past its end):
      // Kafka's auto.offset.reset.
      if (this.position > end) this.position = member.fromBeginning ? log.startOffset : end
      if (this.position < end) {
        const records = log.read(this.position, end, member.maxBatchSize)
        // Compaction can leave the rest of the log empty past our position.
        this.position = records.length === 0 ? end : records[records.length - 1]!.offset + 1
        if (records.length === 0) continue
        member.inFlight++
        try {
          await member.handlers.onBatch({ topic, partition, records, highWatermark: end })
        } catch (error) {
          member.fail(error, `onBatch(${topic}[${partition}])`)
          return
        } finally {
          member.inFlight--
        }
        continue
      }
      log.waiters.add(this)
      await this.sleep()
      // Let the writer finish its turn first: records appended one by one (a producer awaiting
      // each send) then arrive as one batch instead of one batch per record.
      if (!this.stopped) await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }
}

type MemberState = 'active' | 'leaving' | 'left' | 'crashed'

/**
 * A member of a consumer group, as returned by {@link MemoryBroker.join}. The memory transport's
 * consumer is a thin wrapper around it.
 */
export interface GroupMember {
  readonly id: string
  readonly groupId: string
  /** Resolves once the first assignment's `onAssign` resolved (or the member left first). */
  readonly ready: Promise<void>
  /** The handler error that made the member leave the group, if one did. */
  readonly failure: unknown
  /** Currently assigned partitions, by topic then partition. */
  assignment(): TopicPartition[]
  /** Stops delivering these partitions until resumed; a batch already in `onBatch` finishes. */
  pause(partitions: readonly TopicPartition[]): void
  resume(partitions: readonly TopicPartition[]): void
  /**
   * Stores committed offsets for the group. Like a Kafka broker fencing a stale generation, it
   * refuses commits from a member that left or crashed and for partitions the member does not
   * own (during `onRevoke` it still owns the revoked ones), so a zombie never overwrites the
   * progress of a partition's new owner.
   */
  commit(offsets: readonly CommitOffset[]): void
  /**
   * Leaves the group: revokes every partition (awaiting `onRevoke`), then lets the others take
   * them. Rejects with `failure` when a handler failure had already made the member leave.
   */
  leave(): Promise<void>
  /**
   * Leaves at once without revoking (a crash): nothing is drained or committed, and whatever was
   * processed past the committed offsets is delivered again to the partitions' next owners.
   */
  crash(error?: unknown): void
}

class Member implements GroupMember {
  readonly id: string
  readonly groupId: string
  readonly ready: Promise<void>
  failure: unknown = undefined

  readonly topics: readonly string[]
  readonly handlers: ConsumerHandlers
  readonly fromBeginning: boolean
  readonly maxBatchSize: number
  /** Assigned partitions, keyed by log (a recreated topic is a different log). */
  readonly fetchers = new Map<PartitionLog, Fetcher>()
  state: MemberState = 'active'
  /** Handlers (onBatch, onAssign, onRevoke) running now. */
  inFlight = 0
  assignedOnce = false
  /** Resolves (to false) when the member crashes, to stop waiting on its handlers. */
  readonly crashed: Promise<false>
  /** Resolves once the member is out of the group. */
  readonly left: Promise<void>

  private readonly group: Group
  private settleReady: (error?: unknown) => void
  private markCrashed!: (value: false) => void
  private markLeft!: () => void

  constructor(
    group: Group,
    id: string,
    topics: readonly string[],
    handlers: ConsumerHandlers,
    options: JoinOptions,
  ) {
    this.group = group
    this.groupId = group.id
    this.id = id
    this.topics = topics
    this.handlers = handlers
    this.fromBeginning = options.fromBeginning ?? true
    this.maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    let resolveReady!: () => void
    let rejectReady!: (error: unknown) => void
    this.ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve
      rejectReady = reject
    })
    // Callers who never await `ready` must not see an unhandled rejection; those who do still do.
    this.ready.catch(() => {})
    let settled = false
    this.settleReady = (error?: unknown): void => {
      if (settled) return
      settled = true
      if (error === undefined) resolveReady()
      else rejectReady(error)
    }
    this.crashed = new Promise((resolve) => {
      this.markCrashed = resolve
    })
    this.left = new Promise((resolve) => {
      this.markLeft = resolve
    })
  }

  assignment(): TopicPartition[] {
    return sortedPartitions(this.fetchers.keys())
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const fetcher = this.fetcherOf(tp)
      if (fetcher) fetcher.paused = true
    }
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const fetcher = this.fetcherOf(tp)
      if (fetcher?.paused) {
        fetcher.paused = false
        fetcher.wake()
      }
    }
  }

  commit(offsets: readonly CommitOffset[]): void {
    if (this.state === 'left' || this.state === 'crashed') {
      throw new MephistoError(
        'COMMIT_FAILED',
        `Commit refused: consumer ${this.id} is no longer a member of group "${this.groupId}". ` +
          'Offsets can only be committed while the consumer runs; start a new consumer to continue.',
        this.failure === undefined ? undefined : { cause: this.failure },
      )
    }
    for (const { topic, partition, offset } of offsets) {
      if (!Number.isInteger(offset) || offset < 0) {
        throw new BrokerError(
          `Commit refused: offset ${offset} for ${topic}[${partition}] is not a valid offset.`,
        )
      }
      if (!this.fetcherOf({ topic, partition })) {
        throw new MephistoError(
          'COMMIT_FAILED',
          `Commit refused: ${topic}[${partition}] is not assigned to consumer ${this.id} of group ` +
            `"${this.groupId}" (it was revoked or never assigned). Commit only partitions you own.`,
        )
      }
    }
    for (const { topic, partition, offset } of offsets) this.group.setCommitted(topic, partition, offset)
  }

  async leave(): Promise<void> {
    if (this.state === 'active') {
      this.state = 'leaving'
      this.group.requestRebalance()
    }
    await this.left
    if (this.failure !== undefined) throw this.failure
  }

  crash(error?: unknown): void {
    if (this.state === 'left' || this.state === 'crashed') return
    this.state = 'crashed'
    if (error !== undefined) this.failure = error
    for (const fetcher of this.fetchers.values()) fetcher.stop()
    this.fetchers.clear()
    this.group.remove(this)
    this.markCrashed(false)
    this.settleReady(error)
    this.markLeft()
    this.group.requestRebalance()
  }

  /** A handler failed: the member leaves like a crash so its partitions move on. */
  fail(error: unknown, what: string): void {
    if (this.state === 'left' || this.state === 'crashed') return
    const reason = error instanceof Error ? error.message : String(error)
    const lost = new BrokerError(
      `${what} of consumer ${this.id} (group "${this.groupId}") failed: ${reason}. ` +
        'The consumer left the group as if it had crashed; its partitions go to the other members ' +
        'from their committed offsets. Handlers must not throw: handle errors inside them.',
      { cause: error },
    )
    this.crash(lost)
    // After the crash bookkeeping, so the runtime sees a consumer that is already gone.
    try {
      this.handlers.onLost?.(lost)
    } catch {}
  }

  /** The rebalance has taken every partition away: the member is out. */
  markGone(): void {
    this.state = 'left'
    this.group.remove(this)
    this.settleReady()
    this.markLeft()
  }

  /** The first assignment has been handled. */
  markAssigned(): void {
    this.settleReady()
  }

  /**
   * Runs a rebalance handler. Resolves to false when it failed or the member crashed
   * meanwhile (a crashed member's handler is not waited for: it may never finish).
   */
  async invoke(call: () => Promise<void>, what: string): Promise<boolean> {
    if (this.state === 'crashed' || this.state === 'left') return false
    this.inFlight++
    try {
      let done: Promise<boolean>
      try {
        done = Promise.resolve(call()).then(
          () => true,
          (error: unknown) => {
            this.fail(error, what)
            return false
          },
        )
      } catch (error) {
        this.fail(error, what)
        return false
      }
      const ok = await Promise.race([done, this.crashed])
      // The state may have changed while awaiting; TypeScript still narrows it from above.
      return ok && (this.state as MemberState) !== 'crashed'
    } finally {
      this.inFlight--
    }
  }

  private fetcherOf(tp: TopicPartition): Fetcher | undefined {
    const log = this.group.topics.get(tp.topic)?.partitions[tp.partition]
    return log === undefined ? undefined : this.fetchers.get(log)
  }
}

/** A consumer group: members in join order, committed offsets, and serialized rebalances. */
class Group {
  /** Members in join order, which is the order partitions are dealt in. */
  members: Member[] = []
  /** topic -> partition -> next offset to read. */
  readonly committed = new Map<string, Map<number, number>>()
  rebalancing = false
  /** A rebalance was asked for and has not started yet. */
  dirty = false

  constructor(
    /** The broker's topics, to deal partitions from. */
    readonly topics: ReadonlyMap<string, Topic>,
    readonly id: string,
  ) {}

  committedOffset(topic: string, partition: number): number {
    return this.committed.get(topic)?.get(partition) ?? -1
  }

  setCommitted(topic: string, partition: number, offset: number): void {
    let byPartition = this.committed.get(topic)
    if (byPartition === undefined) this.committed.set(topic, (byPartition = new Map()))
    byPartition.set(partition, offset)
  }

  remove(member: Member): void {
    const i = this.members.indexOf(member)
    if (i >= 0) this.members.splice(i, 1)
  }

  subscribesTo(topic: string): boolean {
    return this.members.some((m) => m.topics.includes(topic))
  }

  requestRebalance(): void {
    this.dirty = true
    if (!this.rebalancing) {
      this.rebalancing = true
      void this.runRebalances()
    }
  }

  private async runRebalances(): Promise<void> {
    try {
      // Members that join (or leave) in the same tick share one rebalance, as Kafka's
      // initial rebalance delay would have them.
      await null
      for (;;) {
        this.dirty = false
        const assigned = await this.rebalance()
        if (!this.dirty) this.rebalancing = false
        // Reported ready only now, so that a consumer whose start() resolved sees an idle group
        // (when nothing else is pending) rather than one still finishing its rebalance.
        for (const member of assigned) member.markAssigned()
        if (!this.rebalancing) return
      }
    } catch (error) {
      this.rebalancing = false
      throw error
    }
  }

  /**
   * One rebalance: every member's lost partitions are revoked (awaited, concurrently) before any
   * member is assigned what it gained. Partitions a member keeps are not touched.
   */
  private async rebalance(): Promise<Member[]> {
    const members = this.members.slice()
    const target = this.assign(members.filter((m) => m.state === 'active'))

    await Promise.all(
      members.map(async (member) => {
        const keep = target.get(member)
        const lost: Fetcher[] = []
        for (const [log, fetcher] of member.fetchers) if (!keep?.has(log)) lost.push(fetcher)
        if (lost.length === 0) return
        // No record of a revoked partition is delivered once onRevoke runs; an in-flight batch may finish.
        for (const fetcher of lost) fetcher.stop()
        const partitions = sortedPartitions(lost.map((f) => f.log))
        await member.invoke(() => member.handlers.onRevoke(partitions), 'onRevoke')
        for (const fetcher of lost) member.fetchers.delete(fetcher.log)
      }),
    )
    // A member that began leaving after the target was computed may still own partitions: the
    // rebalance its leave() asked for revokes them.
    for (const member of members)
      if (member.state === 'leaving' && member.fetchers.size === 0) member.markGone()

    const assigned: Member[] = []
    await Promise.all(
      members.map(async (member) => {
        // A member that crashed or began leaving meanwhile gets nothing; the rebalance its
        // departure asked for hands its share to the others.
        if (member.state !== 'active') return
        const gained: PartitionLog[] = []
        for (const log of target.get(member) ?? []) if (!member.fetchers.has(log)) gained.push(log)
        // Kafka calls the assignment listener after joining even with nothing assigned, so a
        // member with no partitions still reports ready.
        if (gained.length === 0 && member.assignedOnce) return
        const fetchers = gained.map((log) => new Fetcher(member, log))
        for (const fetcher of fetchers) member.fetchers.set(fetcher.log, fetcher)
        const ok = await member.invoke(() => member.handlers.onAssign(sortedPartitions(gained)), 'onAssign')
        if (!ok) return
        for (const fetcher of fetchers) {
          if (fetcher.stopped) continue
          // Read now, after every revoke of this rebalance committed what it had.
          const committed = this.committedOffset(fetcher.log.topic, fetcher.log.partition)
          const log = fetcher.log
          fetcher.start(committed >= 0 ? committed : member.fromBeginning ? log.startOffset : log.endOffset)
        }
        member.assignedOnce = true
        assigned.push(member)
      }),
    )
    return assigned
  }

  /**
   * Co-partitioned assignment (Faust's): partition p of every subscribed topic goes to the same
   * member, `subscribers[p % subscribers.length]` in join order. A topic with fewer partitions
   * simply has fewer to deal.
   */
  private assign(members: Member[]): Map<Member, Set<PartitionLog>> {
    const target = new Map<Member, Set<PartitionLog>>()
    const subscribers = new Map<string, Member[]>()
    for (const member of members) {
      target.set(member, new Set())
      for (const topic of member.topics) {
        let list = subscribers.get(topic)
        if (list === undefined) subscribers.set(topic, (list = []))
        list.push(member)
      }
    }
    for (const [name, list] of subscribers) {
      const topic = this.topics.get(name)
      if (topic === undefined) continue
      topic.partitions.forEach((log, p) => {
        target.get(list[p % list.length]!)!.add(log)
      })
    }
    return target
  }
}

function sortedPartitions(logs: Iterable<PartitionLog>): TopicPartition[] {
  return Array.from(logs, (log) => ({ topic: log.topic, partition: log.partition })).sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
  )
}

let privateBrokers = 0

export class MemoryBroker {
  readonly name: string
  readonly now: () => number
  private readonly topics = new Map<string, Topic>()
  private readonly groups = new Map<string, Group>()
  /** Transactional id -> the epoch of its newest producer. */
  private readonly transactionalEpochs = new Map<string, number>()
  private memberIds = 0

  constructor(options: MemoryBrokerOptions = {}) {
    this.name = options.name ?? `private-${++privateBrokers}`
    this.now = options.now ?? Date.now
  }

  // ---- topics -------------------------------------------------------------------------------

  /** Creates the topic unless it exists (an existing topic keeps its partitions). True if created. */
  createTopic(spec: TopicSpec): boolean {
    if (!spec.name) throw new ConfigurationError('A topic needs a non-empty name.')
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      throw new ConfigurationError(
        `Topic "${spec.name}" needs a whole number of partitions >= 1 (got ${spec.partitions}).`,
      )
    }
    if (this.topics.has(spec.name)) return false
    this.topics.set(spec.name, new Topic(spec))
    this.rebalanceSubscribersOf(spec.name)
    return true
  }

  /** Deletes the topic, its records and every group's committed offsets for it. True if it existed. */
  deleteTopic(name: string): boolean {
    if (!this.topics.delete(name)) return false
    for (const group of this.groups.values()) group.committed.delete(name)
    this.rebalanceSubscribersOf(name)
    return true
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name)
  }

  /** Topic names, sorted. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort()
  }

  /** The spec the topic was created with, or undefined when it does not exist. */
  topicSpec(name: string): TopicSpec | undefined {
    return this.topics.get(name)?.spec
  }

  partitionCount(topic: string): number | undefined {
    return this.topics.get(topic)?.partitions.length
  }

  /**
   * Appends a record and returns its offset. `timestamp` overrides the record's (default: the
   * record's, else the broker's clock). Consumers see the record on a later microtask, never
   * synchronously. A compacted topic refuses records without a key, as Kafka does.
   */
  append(
    topicName: string,
    partition: number,
    record: AppendRecord,
    timestamp: number = record.timestamp ?? this.now(),
  ): number {
    const topic = this.requireTopic(topicName)
    const log = topic.partitions[partition]
    if (log === undefined) {
      throw new BrokerError(
        `Partition ${partition} of topic "${topicName}" does not exist: it has ${topic.partitions.length} ` +
          `partition(s), numbered from 0.`,
      )
    }
    if (topic.compacted && record.key === null) {
      throw new BrokerError(
        `Topic "${topicName}" is compacted and refuses records without a key (compaction keeps the ` +
          'latest record per key). Give the record a key.',
      )
    }
    const offset = log.endOffset
    const headers = record.headers
    log.records.push({
      topic: topicName,
      partition,
      offset,
      timestamp,
      key: record.key,
      value: record.value,
      // A copy: Kafka serializes headers at send time, so later changes by the caller do not show.
      headers: headers === undefined ? NO_HEADERS : { ...headers },
    })
    log.endOffset = offset + 1
    if (
      topic.compacted &&
      log.records.length > AUTO_COMPACT_MIN_RECORDS &&
      log.records.length >= AUTO_COMPACT_GROWTH * log.sizeAfterCompaction
    ) {
      this.compactLog(topic, log)
    }
    if (log.waiters.size > 0) log.wakeWaiters()
    return offset
  }

  /** The first available offset of each partition. */
  startOffsets(topic: string): Map<number, number> {
    return new Map(this.requireTopic(topic).partitions.map((log, p) => [p, log.startOffset]))
  }

  /** The end offset (the next offset to be written) of each partition. */
  endOffsets(topic: string): Map<number, number> {
    return new Map(this.requireTopic(topic).partitions.map((log, p) => [p, log.endOffset]))
  }

  /**
   * Records of a partition with offsets in `[from, to)` (default: all), up to `max`. Without a
   * partition: every partition's records, partition by partition. For tests and tools.
   */
  records(
    topic: string,
    partition?: number,
    from = 0,
    to = Number.MAX_SAFE_INTEGER,
    max = Infinity,
  ): RawRecord[] {
    const t = this.requireTopic(topic)
    if (partition === undefined) return t.partitions.flatMap((log) => log.read(from, to, max))
    return this.requireLog(topic, partition).read(from, to, max)
  }

  /**
   * Compacts every partition of a compacted topic now: keeps the latest record per key at its
   * offset. A tombstone (null value) is kept while it is the latest for its key, so readers
   * that saw the old value learn of the delete, unless the topic sets `delete.retention.ms` and
   * the tombstone is older than that. Compaction also runs by itself as a partition grows.
   */
  compact(topic: string): void {
    const t = this.requireTopic(topic)
    if (!t.compacted) {
      throw new BrokerError(
        `Topic "${topic}" is not compacted; create it with compacted: true (cleanup.policy=compact).`,
      )
    }
    for (const log of t.partitions) this.compactLog(t, log)
  }

  // ---- consumer groups ----------------------------------------------------------------------

  /**
   * Adds a member to `groupId` subscribed to `topics` (which must exist) and starts a rebalance.
   * Await `member.ready` for its first assignment to be handled.
   */
  join(
    groupId: string,
    topics: readonly string[],
    handlers: ConsumerHandlers,
    options: JoinOptions = {},
  ): GroupMember {
    if (!groupId) throw new ConfigurationError('A consumer needs a non-empty groupId.')
    const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new ConfigurationError(`maxBatchSize must be a whole number >= 1 (got ${maxBatchSize}).`)
    }
    const missing = topics.filter((t) => !this.topics.has(t))
    if (missing.length > 0) {
      throw new BrokerError(
        `Cannot subscribe group "${groupId}" to missing topic(s) ${missing.map((t) => `"${t}"`).join(', ')}: ` +
          'create them first (admin.ensureTopics).',
      )
    }
    const group = this.groupOf(groupId)
    const member = new Member(group, `${groupId}-${++this.memberIds}`, [...new Set(topics)], handlers, {
      ...options,
      maxBatchSize,
    })
    group.members.push(member)
    group.requestRebalance()
    return member
  }

  // ---- transactions -------------------------------------------------------------------------

  /**
   * Registers a producer under `transactionalId` and returns its epoch; producers registered
   * earlier with the same id are fenced. The memory broker applies a transaction all at once
   * when it commits, so there is never an open transaction to abort or a record to hide.
   */
  initTransactions(transactionalId: string): number {
    if (!transactionalId) throw new ConfigurationError('A transactional producer needs a non-empty id.')
    const epoch = (this.transactionalEpochs.get(transactionalId) ?? -1) + 1
    this.transactionalEpochs.set(transactionalId, epoch)
    return epoch
  }

  /**
   * Commits a transaction: appends `records` (each with its partition) and stores `offsets` for
   * `groupId`, or does nothing at all. Throws `TransactionError` with code `FENCED` when a newer
   * producer holds the id, and a `BrokerError` for a record that cannot be written.
   */
  commitTransaction(
    transactionalId: string,
    epoch: number,
    records: readonly (AppendRecord & { topic: string; partition: number })[],
    groupId: string,
    offsets: readonly CommitOffset[],
  ): { topic: string; partition: number; offset: number }[] {
    const current = this.transactionalEpochs.get(transactionalId)
    if (current !== epoch) {
      throw new TransactionError(
        'FENCED',
        `Producer ${transactionalId} (epoch ${epoch}) was fenced by a newer producer with the same ` +
          `transactional id (epoch ${current}): another worker owns its partitions now.`,
      )
    }
    // Checked before anything is written: a transaction is all or nothing.
    for (const r of records) {
      const topic = this.requireTopic(r.topic)
      this.requireLog(r.topic, r.partition)
      if (topic.compacted && r.key === null) {
        throw new BrokerError(
          `Topic "${r.topic}" is compacted and refuses records without a key; the transaction was aborted.`,
        )
      }
    }
    for (const { topic, partition, offset } of offsets) {
      this.requireLog(topic, partition)
      if (!Number.isInteger(offset) || offset < 0) {
        throw new BrokerError(`Offset ${offset} for ${topic}[${partition}] is not a valid offset.`)
      }
    }
    const written = records.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: this.append(r.topic, r.partition, r),
    }))
    if (offsets.length > 0) {
      const group = this.groupOf(groupId)
      for (const { topic, partition, offset } of offsets) group.setCommitted(topic, partition, offset)
    }
    return written
  }

  /** Committed offsets of a group for a topic's partitions (-1 where none). */
  groupOffsets(groupId: string, topic: string): Map<number, number> {
    const t = this.requireTopic(topic)
    const group = this.groups.get(groupId)
    return new Map(t.partitions.map((_, p) => [p, group?.committedOffset(topic, p) ?? -1]))
  }

  /** The committed offset of a group for one partition, or -1. */
  committedOffset(groupId: string, topic: string, partition: number): number {
    return this.groups.get(groupId)?.committedOffset(topic, partition) ?? -1
  }

  /** Sets a group's committed offsets from outside (tools, resets): the group must have no members. */
  setGroupOffsets(groupId: string, offsets: readonly CommitOffset[]): void {
    const group = this.groupOf(groupId)
    if (group.members.length > 0) {
      throw new BrokerError(
        `Cannot set offsets of group "${groupId}": it has ${group.members.length} running member(s). ` +
          'Stop every consumer of the group first.',
      )
    }
    for (const { topic, partition, offset } of offsets) {
      this.requireLog(topic, partition)
      if (!Number.isInteger(offset) || offset < 0) {
        throw new BrokerError(`Offset ${offset} for ${topic}[${partition}] is not a valid offset.`)
      }
    }
    for (const { topic, partition, offset } of offsets) group.setCommitted(topic, partition, offset)
  }

  /**
   * True when there is nothing more to deliver right now: no rebalance is running or pending, no
   * member has a handler in flight, and every assigned, unpaused partition is read to its end.
   * The testkit settles on it.
   */
  idle(): boolean {
    for (const group of this.groups.values()) {
      if (group.rebalancing || group.dirty) return false
      for (const member of group.members) {
        if (member.inFlight > 0) return false
        for (const fetcher of member.fetchers.values()) if (!fetcher.caughtUp()) return false
      }
    }
    return true
  }

  // ---- internals ----------------------------------------------------------------------------

  private requireLog(topic: string, partition: number): PartitionLog {
    const t = this.requireTopic(topic)
    const log = t.partitions[partition]
    if (log === undefined) {
      throw new BrokerError(
        `Partition ${partition} of topic "${topic}" does not exist: it has ${t.partitions.length} partition(s).`,
      )
    }
    return log
  }

  private requireTopic(name: string): Topic {
    const topic = this.topics.get(name)
    if (topic === undefined) {
      throw new BrokerError(
        `Topic "${name}" does not exist on memory://${this.name}. Create it first (admin.ensureTopics); ` +
          'the broker does not auto-create topics.',
      )
    }
    return topic
  }

  private groupOf(groupId: string): Group {
    let group = this.groups.get(groupId)
    if (group === undefined) this.groups.set(groupId, (group = new Group(this.topics, groupId)))
    return group
  }

  private rebalanceSubscribersOf(topic: string): void {
    for (const group of this.groups.values()) if (group.subscribesTo(topic)) group.requestRebalance()
  }

  private compactLog(topic: Topic, log: PartitionLog): void {
    const records = log.records
    const seen = new Set<string>()
    const kept: RawRecord[] = []
    const retention = topic.tombstoneRetentionMs
    const horizon = retention === undefined ? -Infinity : this.now() - retention
    // Newest first: the first record seen for a key is its latest.
    for (let i = records.length - 1; i >= 0; i--) {
      const record = records[i]!
      if (record.key !== null) {
        // latin1 maps bytes 1:1 to chars, so distinct keys stay distinct.
        const key = record.key.toString('latin1')
        if (seen.has(key)) continue
        seen.add(key)
        if (record.value === null && record.timestamp < horizon) continue
      }
      kept.push(record)
    }
    kept.reverse()
    log.records = kept
    log.startOffset = kept[0]?.offset ?? log.endOffset
    log.dense = kept.length === log.endOffset - log.startOffset
    log.sizeAfterCompaction = kept.length
  }
}

const registry = new Map<string, MemoryBroker>()

/**
 * The process-wide broker called `name`: every `memory://` app in one process shares the
 * `'default'` one, so several workers can form one consumer group; `memory://other` names
 * another. Use `new MemoryBroker()` for a private one (the testkit does, per test).
 */
export function memoryBroker(name = 'default'): MemoryBroker {
  const key = name === '' ? 'default' : name
  let broker = registry.get(key)
  if (broker === undefined) registry.set(key, (broker = new MemoryBroker({ name: key })))
  return broker
}
