/**
 * Fetches the member's ready partitions and hands their records to the runtime: each partition
 * from its position (where the runtime seeked, else the group's stable committed offset, else the
 * reset policy), one `onBatch` of a partition at a time, read committed. It does not decide
 * assignment or commit.
 */
import type { CommitOffset, ConsumerHandlers, Logger, RecordBatch, TopicPartition } from '@mephisto/core'
import { BrokerError } from '@mephisto/core'
import type { ClusterMetadata } from '@platformatic/kafka'
import type { KafkaClient } from './client.js'
import { LEADER_MOVED, messageOf } from './errors.js'
import type { PartitionAnswer } from './fetch.js'
import { byLeader, fetchFrom } from './fetch.js'
import type { Settings } from './options.js'
import type { RebalanceGuard } from './rebalanceGuard.js'
import { tpKey } from './rebalanceGuard.js'
import type { Decoded } from './records.js'
import { decodeBatches } from './records.js'

/** What delivery needs of its consumer. */
export interface DeliveryHost {
  readonly logger: Logger
  handlers(): ConsumerHandlers
  /** A handler (or fetching) failed for good: the member leaves as if it had crashed. */
  fail(error: unknown, what: string): void
  /** The group's committed offsets (stable: none a transaction is still applying), -1 where none. */
  committed(partitions: TopicPartition[]): Promise<CommitOffset[]>
  /** Where a partition without a usable committed offset starts. */
  reset(partitions: TopicPartition[]): Promise<CommitOffset[]>
}

/** Errors of a partition's fetch that a metadata refresh and a retry resolve. */
const TRANSIENT = new Set<string>([...LEADER_MOVED, 'UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID'])

interface PartitionState {
  readonly tp: TopicPartition
  readonly key: string
  /** The next offset to fetch; undefined until resolved. */
  position: number | undefined
  /** Resolve by the reset policy rather than the committed offset (the committed one is out of range). */
  reset: boolean
  /** Bumped on every seek: a fetch or delivery of an older epoch is stale. */
  epoch: number
  /** An `onBatch` of the partition is in progress. */
  busy: boolean
  /** While busy: the offset after the records being delivered, where the next fetch starts. */
  ahead: number | undefined
  /** The next fetch, made while busy (one ahead): delivered when the busy one is done. */
  prefetched: { answer: PartitionAnswer; offset: number } | undefined
  /** A fetch of the partition is in flight. */
  fetching: boolean
}

export class Delivery {
  private readonly partitions = new Map<string, PartitionState>()
  /** Seeks made before the partition is ready (from `onAssign`). */
  private readonly seeks = new Map<string, number>()
  private running = false
  private loop: Promise<void> | undefined
  private wakeUp: (() => void) | undefined
  private epochs = 0
  private lastWarning = 0

  constructor(
    private readonly host: DeliveryHost,
    private readonly guard: RebalanceGuard,
    private readonly client: KafkaClient,
    private readonly settings: Settings['consumer'],
    private readonly maxBatchSize: number,
  ) {}

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Stops fetching; an `onBatch` in progress is not waited for (the runtime's revoke drains it). */
  async stop(): Promise<void> {
    this.running = false
    this.wake()
    await this.loop
  }

  /** These partitions' `onAssign` resolved: fetch them from their seeked or committed offset. */
  ready(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      const seeked = this.seeks.get(key)
      this.seeks.delete(key)
      this.partitions.set(key, {
        tp,
        key,
        position: seeked,
        reset: false,
        epoch: ++this.epochs,
        busy: false,
        ahead: undefined,
        prefetched: undefined,
        fetching: false,
      })
    }
    this.wake()
  }

  /** These partitions are revoked: nothing more of theirs is fetched or delivered. */
  released(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      this.partitions.delete(key)
      this.seeks.delete(key)
    }
  }

  /** The next records of these partitions start at `offset`. */
  seek(offsets: CommitOffset[]): void {
    for (const { topic, partition, offset } of offsets) {
      const key = tpKey(topic, partition)
      const state = this.partitions.get(key)
      if (state === undefined) {
        if (this.guard.mayCommit(topic, partition)) this.seeks.set(key, offset)
        continue
      }
      state.position = offset
      state.reset = false
      state.epoch = ++this.epochs
      state.prefetched = undefined
    }
    this.wake()
  }

  /** Something changed (a partition readied, resumed or freed): look again. */
  wake(): void {
    const wake = this.wakeUp
    this.wakeUp = undefined
    wake?.()
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.resolvePositions()
        // Idle partitions from their position, and busy ones one fetch ahead (from where the records
        // being delivered end), so the network works while the runtime does.
        const wanted = [...this.partitions.values()].filter(
          (s) =>
            s.position !== undefined &&
            !s.fetching &&
            this.guard.deliverable(s.key) &&
            (!s.busy || (s.ahead !== undefined && s.prefetched === undefined)),
        )
        if (wanted.length === 0) {
          await this.idle(250)
          continue
        }
        const topics = [...new Set(wanted.map((s) => s.tp.topic))]
        const metadata = await this.client.metadata(topics)
        const leaders = byLeader(
          metadata,
          wanted.map((s) => ({ ...s.tp, state: s })),
        )
        if (leaders.size === 0) {
          this.client.clearMetadata()
          await this.idle(100)
          continue
        }
        await Promise.all(
          [...leaders.values()].map(({ broker, partitions }) =>
            this.fetchFrom(
              broker,
              metadata,
              partitions.map((p) => p.state),
            ),
          ),
        )
      } catch (error) {
        if (!this.running) return
        if (error instanceof FatalFetch) {
          this.host.fail(error.error, 'fetching')
          return
        }
        this.warn(`fetching failed, retrying: ${messageOf(error)}`)
        this.client.clearMetadata()
        await this.idle(500)
      }
    }
  }

  /** Committed offsets (stable) for partitions without a position, then the reset policy where none. */
  private async resolvePositions(): Promise<void> {
    const unresolved = [...this.partitions.values()].filter((s) => s.position === undefined)
    if (unresolved.length === 0) return
    const byCommit = unresolved.filter((s) => !s.reset)
    const epochs = new Map(unresolved.map((s) => [s, s.epoch]))
    const toReset = unresolved.filter((s) => s.reset)
    if (byCommit.length > 0) {
      const committed = await this.host.committed(byCommit.map((s) => s.tp))
      for (const [i, c] of committed.entries()) {
        const state = byCommit[i]!
        if (!this.current(state, epochs.get(state)!) || state.position !== undefined) continue
        if (c.offset >= 0) state.position = c.offset
        else toReset.push(state)
      }
    }
    if (toReset.length > 0) {
      const offsets = await this.host.reset(toReset.map((s) => s.tp))
      for (const [i, o] of offsets.entries()) {
        const state = toReset[i]!
        if (!this.current(state, epochs.get(state)!) || state.position !== undefined) continue
        state.position = o.offset
        state.reset = false
      }
    }
  }

  private async fetchFrom(
    broker: { host: string; port: number },
    metadata: ClusterMetadata,
    states: PartitionState[],
  ): Promise<void> {
    const asked = states.map((s) => ({ state: s, epoch: s.epoch, offset: s.busy ? s.ahead! : s.position! }))
    for (const { state } of asked) state.fetching = true
    let answers: PartitionAnswer[]
    try {
      answers = await fetchFrom(
        this.client,
        broker,
        metadata,
        asked.map(({ state, offset }) => ({
          topic: state.tp.topic,
          partition: state.tp.partition,
          offset,
          maxBytes: this.settings.maxBytesPerPartition,
        })),
        this.settings,
      )
    } finally {
      for (const { state } of asked) state.fetching = false
    }
    let transient = false
    for (const answer of answers) {
      const request = asked.find(
        (a) => a.state.tp.topic === answer.topic && a.state.tp.partition === answer.partition,
      )
      if (request === undefined) continue
      const { state, epoch, offset } = request
      // Seeked or revoked while the fetch was out: what came back is stale.
      if (!this.current(state, epoch)) continue
      if (state.busy) {
        // The fetch ahead, back while the runtime still has the records before it: held until
        // their delivery ends (which delivers it), so the partition is not fetched again meanwhile.
        if (offset === state.ahead && answer.error === undefined) state.prefetched = { answer, offset }
        continue
      }
      if (state.position !== offset) continue
      if (answer.error === 'OFFSET_OUT_OF_RANGE') {
        this.host.logger.warn(
          `offset ${offset} of ${answer.topic}[${answer.partition}] is out of range (log ${answer.logStartOffset}..${answer.highWatermark}); resetting`,
        )
        state.position = undefined
        state.reset = true
      } else if (answer.error !== undefined) {
        if (!TRANSIENT.has(answer.error)) {
          throw new FatalFetch(
            new BrokerError(`Fetching ${answer.topic}[${answer.partition}] failed: ${answer.error}`),
          )
        }
        transient = true
      } else {
        this.deliver(state, epoch, answer)
      }
    }
    if (transient) {
      this.client.clearMetadata()
      await this.idle(100)
    }
  }

  /** Hands a partition's fetched records to the runtime in chunks; marks it busy meanwhile. */
  private deliver(state: PartitionState, epoch: number, answer: PartitionAnswer): void {
    let decoded: Decoded
    try {
      decoded = decodeBatches(
        answer.topic,
        answer.partition,
        answer.recordSet,
        answer.abortedTransactions,
        state.position!,
      )
    } catch (error) {
      // Bytes this transport cannot read (a corrupt batch, an old message format): fetching them
      // again cannot help. Failed here, not thrown: a prefetched answer is delivered outside the loop.
      this.host.fail(error, `reading ${answer.topic}[${answer.partition}] at offset ${state.position}`)
      return
    }
    const { records, next } = decoded
    if (records.length === 0) {
      state.position = Math.max(state.position!, next)
      return
    }
    state.busy = true
    state.ahead = next
    void (async () => {
      try {
        for (let i = 0; i < records.length; i += this.maxBatchSize) {
          if (!this.current(state, epoch) || !this.guard.deliverable(state.key)) return
          const chunk =
            i === 0 && records.length <= this.maxBatchSize ? records : records.slice(i, i + this.maxBatchSize)
          const batch: RecordBatch = {
            topic: answer.topic,
            partition: answer.partition,
            records: chunk,
            highWatermark: answer.highWatermark,
          }
          try {
            await this.host.handlers().onBatch(batch)
          } catch (error) {
            this.host.fail(error, `onBatch(${answer.topic}[${answer.partition}])`)
            return
          }
          if (!this.current(state, epoch)) return
          // The next fetch of this partition starts after what the runtime has taken.
          state.position = chunk[chunk.length - 1]!.offset + 1
        }
        if (this.current(state, epoch)) state.position = Math.max(state.position!, next)
      } finally {
        state.busy = false
        state.ahead = undefined
        const ahead = state.prefetched
        state.prefetched = undefined
        // The fetch ahead starts where this delivery ended: deliver it now (else it is dropped).
        if (ahead !== undefined && this.current(state, epoch) && state.position === ahead.offset) {
          if (this.guard.deliverable(state.key)) this.deliver(state, epoch, ahead.answer)
        }
        this.wake()
      }
    })()
  }

  private current(state: PartitionState, epoch: number): boolean {
    return this.running && this.partitions.get(state.key) === state && state.epoch === epoch
  }

  /** Waits `ms`, or less when something changed. */
  private idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wakeUp = done
    })
  }

  private warn(message: string): void {
    const now = Date.now()
    if (now - this.lastWarning < 10_000) return
    this.lastWarning = now
    this.host.logger.warn(message)
  }
}

/** A fetch error that retrying cannot fix (an authorization error, say). */
export class FatalFetch extends Error {
  constructor(readonly error: BrokerError) {
    super(error.message, { cause: error })
  }
}
