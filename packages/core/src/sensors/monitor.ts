import type { TopicPartition } from '../transport/transport.js'
import type { Sensor, StreamEventInfo } from './sensor.js'

export interface MonitorOptions {
  /**
   * The clock, in milliseconds, for latencies and rates. Default `performance.now()`: monotonic and
   * sub-millisecond, so an NTP step cannot produce a negative latency.
   */
  now?: () => number
  /** The window the per-second rates are averaged over. Default 10 000 ms; rounded up to whole seconds. */
  rateWindowMs?: number
  /** How many recent samples each latency series keeps for avg/p50/p99/max. Default 1000. */
  maxLatencySamples?: number
  /**
   * About how many events per second have their runtime timed (`events.runtime`, and what a subclass
   * reads from the state `onStreamEventIn` returns). Below this rate every event is timed; above it,
   * one event in every n, n re-estimated from the rate every 100 ms or so. Reading the clock twice
   * per event cost a stateless agent about a tenth of its throughput. Counts, active events and
   * rates always include every event. Default 10 000; `Infinity` times every event.
   */
  eventTimingsPerSec?: number
}

/** Summary of a latency series, in milliseconds. `count` is all-time; the rest are over the recent sample. */
export interface LatencyStats {
  count: number
  avg: number
  p50: number
  p99: number
  max: number
}

/** Offsets of one topic-partition. An offset not yet known is `-1`. */
export interface PartitionSnapshot {
  topic: string
  partition: number
  /** The last offset received. */
  read: number
  /** The committed offset: the next offset the group will read. */
  committed: number
  /** The end offset (high watermark): one past the last offset in the partition. */
  end: number
  /** `end - max(committed, 0)`, at least 0: records not yet committed (all of them when nothing is). */
  lag: number
}

export interface TableSnapshot {
  gets: number
  sets: number
  deletes: number
  /** Events that arrived for a window already closed. */
  lateEvents: number
}

export interface StreamSnapshot {
  /** Events that entered the stream. */
  total: number
  /** Events in the stream not yet out of it. */
  active: number
  /** Time from entering to leaving the stream. */
  runtime: LatencyStats
}

export interface SendTopicSnapshot {
  /** Sends acknowledged by the broker. */
  total: number
  errors: number
  latency: LatencyStats
}

export interface RecoverySnapshot {
  table: string
  partition: number
  done: number
  total: number
}

/** Everything a {@link Monitor} knows, as plain JSON-serialisable data (records keyed by name). */
export interface MonitorSnapshot {
  messages: {
    receivedTotal: number
    receivedBytesTotal: number
    receivedByTopic: Record<string, number>
    /** Messages received and not yet fully processed (`onMessageIn` minus `onMessageOut`). */
    active: number
    /** Messages handed to the producer, successful or not (`onSendInitiated`). */
    sentTotal: number
    sentBytesTotal: number
    sentByTopic: Record<string, number>
  }
  events: {
    total: number
    active: number
    runtime: LatencyStats
    byStream: Record<string, StreamSnapshot>
  }
  tables: Record<string, TableSnapshot>
  commits: { total: number; latency: LatencyStats }
  sends: {
    /** Sends acknowledged by the broker. */
    total: number
    errors: number
    /** Sends initiated and neither acknowledged nor failed yet. */
    inFlight: number
    latency: LatencyStats
    byTopic: Record<string, SendTopicSnapshot>
  }
  assignments: { total: number; errors: number; latency: LatencyStats }
  rebalances: { total: number; inProgress: boolean; latency: LatencyStats }
  web: { total: number; byStatus: Record<string, number>; latency: LatencyStats }
  dlq: { total: number; byDlqTopic: Record<string, number>; bySourceTopic: Record<string, number> }
  skips: { total: number; byStream: Record<string, number> }
  /** In-process worker restarts after a failed transaction or flush, and the last reason. */
  restarts: { total: number; lastReason: string | null }
  recovery: { recovering: boolean; partitions: RecoverySnapshot[] }
  /** Sorted by topic, then partition. */
  partitions: PartitionSnapshot[]
  rates: {
    windowMs: number
    eventsPerSec: number
    messagesReceivedPerSec: number
    messagesSentPerSec: number
  }
}

/**
 * A latency series: an all-time count and a ring of the latest samples. The ring keeps memory
 * bounded per series however long the process runs; percentiles are computed only on read.
 */
export class LatencySeries {
  count = 0
  private readonly capacity: number
  private readonly samples: number[] = []
  private next = 0

  constructor(capacity: number) {
    this.capacity = Math.max(1, Math.floor(capacity))
  }

  add(ms: number): void {
    this.count++
    if (this.samples.length < this.capacity) {
      this.samples.push(ms)
    } else {
      this.samples[this.next] = ms
      this.next = (this.next + 1) % this.capacity
    }
  }

  stats(): LatencyStats {
    const n = this.samples.length
    if (n === 0) return { count: this.count, avg: 0, p50: 0, p99: 0, max: 0 }
    const sorted = this.samples.slice().sort((a, b) => a - b)
    let sum = 0
    for (const ms of sorted) sum += ms
    // Nearest-rank percentile: always a value that was actually observed.
    const rank = (p: number): number => sorted[Math.max(0, Math.ceil(p * n) - 1)] ?? 0
    return { count: this.count, avg: sum / n, p50: rank(0.5), p99: rank(0.99), max: sorted[n - 1] ?? 0 }
  }
}

/**
 * Counts per second in a ring of one-second buckets. Adding is O(1) and allocation-free; the rate
 * is the count since the start of the oldest bucket still in the window, divided by that span.
 */
export class RateCounter {
  private readonly buckets: number
  private readonly seconds: Float64Array
  private readonly counts: Float64Array

  constructor(windowMs: number) {
    this.buckets = Math.max(1, Math.ceil(windowMs / 1000))
    this.seconds = new Float64Array(this.buckets).fill(Number.NEGATIVE_INFINITY)
    this.counts = new Float64Array(this.buckets)
  }

  add(now: number, n = 1): void {
    const second = Math.floor(now / 1000)
    const i = ((second % this.buckets) + this.buckets) % this.buckets
    if (this.seconds[i] !== second) {
      this.seconds[i] = second
      this.counts[i] = 0
    }
    this.counts[i] = (this.counts[i] ?? 0) + n
  }

  /** Per-second rate at `now`; `since` (when counting began) keeps a young counter from under-reporting. */
  rate(now: number, since: number): number {
    const current = Math.floor(now / 1000)
    const oldest = current - this.buckets + 1
    let sum = 0
    for (let i = 0; i < this.buckets; i++) {
      const second = this.seconds[i] ?? Number.NEGATIVE_INFINITY
      if (second >= oldest && second <= current) sum += this.counts[i] ?? 0
    }
    // The buckets cover [oldest second, now]; the current second is partial, so divide by the real
    // span. At least one second, so a handful of events just after start does not read as a spike.
    const span = now - Math.max(since, oldest * 1000)
    return (sum * 1000) / Math.max(1000, span)
  }

  clear(): void {
    this.seconds.fill(Number.NEGATIVE_INFINITY)
    this.counts.fill(0)
  }
}

/** Per-topic counters. */
export interface TopicStats {
  received: number
  receivedBytes: number
  sent: number
  sentBytes: number
  sendsCompleted: number
  sendErrors: number
  sendLatency: LatencySeries
  /** Offsets by partition. `-1` means not known yet. */
  partitions: Map<number, PartitionOffsets>
}

export interface PartitionOffsets {
  read: number
  committed: number
  end: number
}

export interface StreamStats {
  total: number
  active: number
  runtime: LatencySeries
}

export interface TableStats {
  gets: number
  sets: number
  deletes: number
  lateEvents: number
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

/**
 * The core monitor, after Faust's `Monitor`: a {@link Sensor} that keeps counts, latencies, rates and,
 * per topic-partition, read, committed and end offsets and lag. It only counts: reading is
 * {@link snapshot}, which web `/stats` serves and which `DatadogMonitor` and `PrometheusMonitor` export.
 *
 * Subclasses may read the protected fields directly, or override a hook and call `super` to see each
 * event as it happens. Every hook is O(1) (a few map lookups); percentiles are computed in
 * {@link snapshot}, never on the hot path.
 *
 * Partitions stay in the snapshot after they are revoked, with their last known offsets, until
 * {@link reset}.
 */
export class Monitor implements Sensor {
  protected readonly now: () => number
  protected readonly rateWindowMs: number
  protected readonly maxLatencySamples: number
  /** When counting (re)started, on the `now` clock; rates use it while younger than the window. */
  protected startedAt: number

  protected messagesReceived = 0
  protected messagesReceivedBytes = 0
  protected messagesActive = 0
  protected messagesSent = 0
  protected messagesSentBytes = 0
  protected readonly topics = new Map<string, TopicStats>()

  protected eventsTotal = 0
  protected eventsActive = 0
  protected eventRuntime: LatencySeries
  protected readonly streams = new Map<string, StreamStats>()

  protected readonly tables = new Map<string, TableStats>()

  protected commitsTotal = 0
  protected commitLatency: LatencySeries

  protected sendsCompleted = 0
  protected sendErrors = 0
  protected sendsInFlight = 0
  protected sendLatency: LatencySeries

  protected assignmentsCompleted = 0
  protected assignmentErrors = 0
  protected assignmentLatency: LatencySeries

  protected rebalancesTotal = 0
  protected rebalancesActive = 0
  protected rebalanceLatency: LatencySeries

  protected webRequests = 0
  protected readonly webByStatus = new Map<string, number>()
  protected webLatency: LatencySeries

  protected dlqTotal = 0
  protected readonly dlqByDlqTopic = new Map<string, number>()
  protected readonly dlqBySourceTopic = new Map<string, number>()

  protected skipsTotal = 0
  protected restartsTotal = 0
  protected lastRestartReason: string | null = null
  protected readonly skipsByStream = new Map<string, number>()

  /** Table -> partition -> replay progress. */
  protected readonly recovery = new Map<string, Map<number, { done: number; total: number }>>()

  protected readonly eventRate: RateCounter
  /** Events not yet in {@link eventRate} (added at the next clock reading, as received messages are). */
  protected unratedEvents = 0
  protected readonly eventTimingsPerSec: number
  /** Time one event in every `timingEvery`; `untilTimed` counts down to the next. */
  private timingEvery = 1
  private untilTimed = 1
  private estimatedAt: number
  private eventsSinceEstimate = 0
  /** One-entry caches: the hooks see the same stream and partition many times in a row. */
  private lastStreamName: string | undefined
  private lastStream: StreamStats | undefined
  private lastTp: TopicPartition | undefined
  private lastTpTopic: TopicStats | undefined
  private lastTpOffsets: PartitionOffsets | undefined
  protected readonly receivedRate: RateCounter
  /**
   * Messages received and not yet in {@link receivedRate}: reading the clock per message costs more
   * than the rest of `onMessageIn`, so they are added at the next hook that reads it anyway (a timed
   * event, the offsets reported after each batch, a snapshot): at most a batch late.
   */
  protected unratedReceived = 0
  protected readonly sentRate: RateCounter

  constructor(options: MonitorOptions = {}) {
    this.now = options.now ?? (() => performance.now())
    this.rateWindowMs = Math.max(1, Math.ceil((options.rateWindowMs ?? 10_000) / 1000)) * 1000
    this.maxLatencySamples = options.maxLatencySamples ?? 1000
    this.eventTimingsPerSec = options.eventTimingsPerSec ?? 10_000
    if (!(this.eventTimingsPerSec > 0)) {
      throw new RangeError(`eventTimingsPerSec must be above 0 (got ${options.eventTimingsPerSec})`)
    }
    this.startedAt = this.now()
    this.estimatedAt = this.startedAt
    this.eventRuntime = this.latencySeries()
    this.commitLatency = this.latencySeries()
    this.sendLatency = this.latencySeries()
    this.assignmentLatency = this.latencySeries()
    this.rebalanceLatency = this.latencySeries()
    this.webLatency = this.latencySeries()
    this.eventRate = new RateCounter(this.rateWindowMs)
    this.receivedRate = new RateCounter(this.rateWindowMs)
    this.sentRate = new RateCounter(this.rateWindowMs)
  }

  /** Forgets everything counted so far, as if just constructed. */
  reset(): void {
    this.startedAt = this.now()
    this.estimatedAt = this.startedAt
    this.timingEvery = 1
    this.untilTimed = 1
    this.unratedEvents = 0
    this.lastStreamName = undefined
    this.lastStream = undefined
    this.lastTp = undefined
    this.lastTpTopic = undefined
    this.lastTpOffsets = undefined
    this.messagesReceived = 0
    this.messagesReceivedBytes = 0
    this.messagesActive = 0
    this.messagesSent = 0
    this.messagesSentBytes = 0
    this.topics.clear()
    this.eventsTotal = 0
    this.eventsActive = 0
    this.eventRuntime = this.latencySeries()
    this.streams.clear()
    this.tables.clear()
    this.commitsTotal = 0
    this.commitLatency = this.latencySeries()
    this.sendsCompleted = 0
    this.sendErrors = 0
    this.sendsInFlight = 0
    this.sendLatency = this.latencySeries()
    this.assignmentsCompleted = 0
    this.assignmentErrors = 0
    this.assignmentLatency = this.latencySeries()
    this.rebalancesTotal = 0
    this.rebalancesActive = 0
    this.rebalanceLatency = this.latencySeries()
    this.webRequests = 0
    this.webByStatus.clear()
    this.webLatency = this.latencySeries()
    this.dlqTotal = 0
    this.dlqByDlqTopic.clear()
    this.dlqBySourceTopic.clear()
    this.skipsTotal = 0
    this.restartsTotal = 0
    this.lastRestartReason = null
    this.skipsByStream.clear()
    this.recovery.clear()
    this.eventRate.clear()
    this.receivedRate.clear()
    this.unratedReceived = 0
    this.sentRate.clear()
  }

  protected latencySeries(): LatencySeries {
    return new LatencySeries(this.maxLatencySamples)
  }

  protected topic(name: string): TopicStats {
    let stats = this.topics.get(name)
    if (stats === undefined) {
      stats = {
        received: 0,
        receivedBytes: 0,
        sent: 0,
        sentBytes: 0,
        sendsCompleted: 0,
        sendErrors: 0,
        sendLatency: this.latencySeries(),
        partitions: new Map(),
      }
      this.topics.set(name, stats)
    }
    return stats
  }

  protected partition(tp: TopicPartition): PartitionOffsets {
    const partitions = this.topic(tp.topic).partitions
    let offsets = partitions.get(tp.partition)
    if (offsets === undefined) {
      offsets = { read: -1, committed: -1, end: -1 }
      partitions.set(tp.partition, offsets)
    }
    return offsets
  }

  protected stream(name: string): StreamStats {
    if (name === this.lastStreamName) return this.lastStream!
    let stats = this.streams.get(name)
    if (stats === undefined) {
      stats = { total: 0, active: 0, runtime: this.latencySeries() }
      this.streams.set(name, stats)
    }
    this.lastStreamName = name
    this.lastStream = stats
    return stats
  }

  protected table(name: string): TableStats {
    let stats = this.tables.get(name)
    if (stats === undefined) {
      stats = { gets: 0, sets: 0, deletes: 0, lateEvents: 0 }
      this.tables.set(name, stats)
    }
    return stats
  }

  /** Milliseconds since a `state` a start hook returned; undefined if the state is not ours. */
  protected elapsed(state: unknown): number | undefined {
    return typeof state === 'number' ? Math.max(0, this.now() - state) : undefined
  }

  onMessageIn(tp: TopicPartition, offset: number, bytes: number): void {
    this.messagesReceived++
    this.messagesReceivedBytes += bytes
    this.messagesActive++
    let topic: TopicStats
    let offsets: PartitionOffsets
    if (tp === this.lastTp) {
      topic = this.lastTpTopic!
      offsets = this.lastTpOffsets!
    } else {
      topic = this.topic(tp.topic)
      offsets = this.partition(tp)
      // The runtime passes one object per partition: the next message likely has the same.
      this.lastTp = tp
      this.lastTpTopic = topic
      this.lastTpOffsets = offsets
    }
    topic.received++
    topic.receivedBytes += bytes
    offsets.read = offset
    // Having read `offset`, the partition holds at least offset + 1 records, whatever fetch last said.
    if (offset + 1 > offsets.end) offsets.end = offset + 1
    this.unratedReceived++
  }

  /** Adds the messages received and events handled since the clock was last read to their rates. */
  protected addUnrated(now: number): void {
    if (this.unratedReceived > 0) {
      this.receivedRate.add(now, this.unratedReceived)
      this.unratedReceived = 0
    }
    if (this.unratedEvents > 0) {
      this.eventRate.add(now, this.unratedEvents)
      this.unratedEvents = 0
    }
  }

  onMessageOut(_tp: TopicPartition, _offset: number): void {
    if (this.messagesActive > 0) this.messagesActive--
  }

  /** The start time for a timed event (see {@link MonitorOptions.eventTimingsPerSec}), else undefined. */
  onStreamEventIn(event: StreamEventInfo): unknown {
    this.eventsTotal++
    this.eventsActive++
    const stream = this.stream(event.stream)
    stream.total++
    stream.active++
    this.unratedEvents++
    if (--this.untilTimed > 0) return undefined
    const now = this.now()
    this.addUnrated(now)
    // Every 100 ms or so, the event rate since sets how many events pass between timed ones.
    this.eventsSinceEstimate += this.timingEvery
    const elapsed = now - this.estimatedAt
    if (elapsed >= 100) {
      const perSec = (this.eventsSinceEstimate * 1000) / elapsed
      this.timingEvery = Math.min(1000, Math.max(1, Math.floor(perSec / this.eventTimingsPerSec)))
      this.estimatedAt = now
      this.eventsSinceEstimate = 0
    }
    this.untilTimed = this.timingEvery
    return now
  }

  onStreamEventOut(event: StreamEventInfo, state: unknown): void {
    if (this.eventsActive > 0) this.eventsActive--
    const stream = this.stream(event.stream)
    if (stream.active > 0) stream.active--
    const ms = this.elapsed(state)
    if (ms === undefined) return
    this.eventRuntime.add(ms)
    stream.runtime.add(ms)
  }

  onTableGet(table: string, _key: unknown): void {
    this.table(table).gets++
  }

  onTableSet(table: string, _key: unknown, _value: unknown): void {
    this.table(table).sets++
  }

  onTableDelete(table: string, _key: unknown): void {
    this.table(table).deletes++
  }

  onLateEvent(table: string): void {
    this.table(table).lateEvents++
  }

  onCommitInitiated(): unknown {
    return this.now()
  }

  onCommitCompleted(state: unknown, offsets: readonly (TopicPartition & { offset: number })[]): void {
    this.commitsTotal++
    const ms = this.elapsed(state)
    if (ms !== undefined) this.commitLatency.add(ms)
    for (const tp of offsets) this.updateOffsets(tp, { committed: tp.offset })
  }

  onSendInitiated(topic: string, bytes: number): unknown {
    const now = this.now()
    this.messagesSent++
    this.messagesSentBytes += bytes
    this.sendsInFlight++
    const stats = this.topic(topic)
    stats.sent++
    stats.sentBytes += bytes
    this.sentRate.add(now)
    return now
  }

  onSendCompleted(state: unknown, topic: string): void {
    if (this.sendsInFlight > 0) this.sendsInFlight--
    this.sendsCompleted++
    const stats = this.topic(topic)
    stats.sendsCompleted++
    const ms = this.elapsed(state)
    if (ms === undefined) return
    this.sendLatency.add(ms)
    stats.sendLatency.add(ms)
  }

  onSendError(_state: unknown, topic: string, _error: unknown): void {
    if (this.sendsInFlight > 0) this.sendsInFlight--
    this.sendErrors++
    this.topic(topic).sendErrors++
  }

  onAssignmentStart(_partitions: readonly TopicPartition[]): unknown {
    return this.now()
  }

  onAssignmentCompleted(state: unknown, _partitions: readonly TopicPartition[]): void {
    this.assignmentsCompleted++
    const ms = this.elapsed(state)
    if (ms !== undefined) this.assignmentLatency.add(ms)
  }

  onAssignmentError(_state: unknown, _error: unknown): void {
    this.assignmentErrors++
  }

  onRebalanceStart(_revoked: readonly TopicPartition[]): unknown {
    this.rebalancesTotal++
    this.rebalancesActive++
    return this.now()
  }

  onRebalanceEnd(state: unknown): void {
    if (this.rebalancesActive > 0) this.rebalancesActive--
    const ms = this.elapsed(state)
    if (ms !== undefined) this.rebalanceLatency.add(ms)
  }

  onWebRequest(_method: string, _path: string, status: number, ms: number): void {
    this.webRequests++
    increment(this.webByStatus, String(status))
    this.webLatency.add(ms)
  }

  onDlq(source: TopicPartition & { offset: number }, dlqTopic: string, _reason: string): void {
    this.dlqTotal++
    increment(this.dlqByDlqTopic, dlqTopic)
    increment(this.dlqBySourceTopic, source.topic)
  }

  onSkip(stream: string, _error: unknown): void {
    this.skipsTotal++
    increment(this.skipsByStream, stream)
  }

  onWorkerRestart(reason: unknown): void {
    this.restartsTotal++
    this.lastRestartReason = reason instanceof Error ? reason.message : String(reason)
  }

  onRecoveryProgress(table: string, partition: number, done: number, total: number): void {
    let partitions = this.recovery.get(table)
    if (partitions === undefined) this.recovery.set(table, (partitions = new Map()))
    partitions.set(partition, { done, total })
  }

  onOffsets(tp: TopicPartition, offsets: { read?: number; committed?: number; end?: number }): void {
    if (this.unratedReceived > 0 || this.unratedEvents > 0) this.addUnrated(this.now())
    this.updateOffsets(tp, offsets)
  }

  protected updateOffsets(
    tp: TopicPartition,
    update: { read?: number; committed?: number; end?: number },
  ): void {
    const offsets = this.partition(tp)
    if (update.read !== undefined) offsets.read = update.read
    if (update.committed !== undefined) offsets.committed = update.committed
    // A reported end is taken as is (it may be older than what we have since read), but never below
    // what reading or committing proves exists, so lag cannot go negative from a stale fetch.
    const end = update.end ?? offsets.end
    offsets.end = Math.max(end, offsets.read + 1, offsets.committed)
  }

  /** Lag of one partition: records at or after the committed offset. Nothing committed counts from 0. */
  protected lag(offsets: PartitionOffsets): number {
    if (offsets.end < 0) return 0
    return Math.max(0, offsets.end - Math.max(offsets.committed, 0))
  }

  /** Whether any table partition has not finished replaying its changelog. */
  get recovering(): boolean {
    for (const partitions of this.recovery.values()) {
      for (const { done, total } of partitions.values()) if (done < total) return true
    }
    return false
  }

  /** Everything counted so far, as a fresh plain object (safe to keep, mutate or `JSON.stringify`). */
  snapshot(): MonitorSnapshot {
    const now = this.now()
    this.addUnrated(now)
    const topics = [...this.topics].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const partitions: PartitionSnapshot[] = []
    for (const [topic, stats] of topics) {
      const sorted = [...stats.partitions].sort(([a], [b]) => a - b)
      for (const [partition, o] of sorted) {
        partitions.push({
          topic,
          partition,
          read: o.read,
          committed: o.committed,
          end: o.end,
          lag: this.lag(o),
        })
      }
    }
    const recovery: RecoverySnapshot[] = []
    for (const [table, byPartition] of this.recovery) {
      for (const [partition, { done, total }] of byPartition) recovery.push({ table, partition, done, total })
    }
    recovery.sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : a.partition - b.partition))
    // Object.fromEntries defines own properties, so a topic named `__proto__` (legal in Kafka) is kept.
    const byTopic = <T>(
      pick: (stats: TopicStats) => T,
      keep: (stats: TopicStats) => boolean,
    ): Record<string, T> =>
      Object.fromEntries(
        topics.filter(([, stats]) => keep(stats)).map(([name, stats]) => [name, pick(stats)]),
      )
    return {
      messages: {
        receivedTotal: this.messagesReceived,
        receivedBytesTotal: this.messagesReceivedBytes,
        receivedByTopic: byTopic(
          (t) => t.received,
          (t) => t.received > 0,
        ),
        active: this.messagesActive,
        sentTotal: this.messagesSent,
        sentBytesTotal: this.messagesSentBytes,
        sentByTopic: byTopic(
          (t) => t.sent,
          (t) => t.sent > 0,
        ),
      },
      events: {
        total: this.eventsTotal,
        active: this.eventsActive,
        runtime: this.eventRuntime.stats(),
        byStream: Object.fromEntries(
          [...this.streams].map(([name, s]) => [
            name,
            { total: s.total, active: s.active, runtime: s.runtime.stats() },
          ]),
        ),
      },
      tables: Object.fromEntries([...this.tables].map(([name, t]) => [name, { ...t }])),
      commits: { total: this.commitsTotal, latency: this.commitLatency.stats() },
      sends: {
        total: this.sendsCompleted,
        errors: this.sendErrors,
        inFlight: this.sendsInFlight,
        latency: this.sendLatency.stats(),
        byTopic: byTopic(
          (t) => ({ total: t.sendsCompleted, errors: t.sendErrors, latency: t.sendLatency.stats() }),
          (t) => t.sent > 0 || t.sendsCompleted > 0 || t.sendErrors > 0,
        ),
      },
      assignments: {
        total: this.assignmentsCompleted,
        errors: this.assignmentErrors,
        latency: this.assignmentLatency.stats(),
      },
      rebalances: {
        total: this.rebalancesTotal,
        inProgress: this.rebalancesActive > 0,
        latency: this.rebalanceLatency.stats(),
      },
      web: {
        total: this.webRequests,
        byStatus: Object.fromEntries(this.webByStatus),
        latency: this.webLatency.stats(),
      },
      dlq: {
        total: this.dlqTotal,
        byDlqTopic: Object.fromEntries(this.dlqByDlqTopic),
        bySourceTopic: Object.fromEntries(this.dlqBySourceTopic),
      },
      skips: { total: this.skipsTotal, byStream: Object.fromEntries(this.skipsByStream) },
      restarts: { total: this.restartsTotal, lastReason: this.lastRestartReason },
      recovery: { recovering: this.recovering, partitions: recovery },
      partitions,
      rates: {
        windowMs: this.rateWindowMs,
        eventsPerSec: this.eventRate.rate(now, this.startedAt),
        messagesReceivedPerSec: this.receivedRate.rate(now, this.startedAt),
        messagesSentPerSec: this.sentRate.rate(now, this.startedAt),
      },
    }
  }
}
