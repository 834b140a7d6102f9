// The core Monitor: a Sensor whose hooks count what the runtime does into a MonitorState, and
// snapshot() to read it, with what the running worker's probe reads at that moment. The counters
// and their lookups are monitorState.ts's, which events get timed eventTiming.ts's, the snapshot's
// shape and assembly monitorSnapshot.ts's and takeSnapshot.ts's.
import type { TopicPartition } from '../transport/transport.js'
import { MonitorCounters } from './monitorCounters.js'
import type { MonitorSnapshot } from './monitorSnapshot.js'
import {
  lag,
  type MonitorSettings,
  MonitorState,
  type PartitionOffsets,
  type TopicStats,
} from './monitorState.js'
import type { AgentProgress, Sensor, StreamEventInfo, WorkerProbe } from './sensor.js'
import { takeSnapshot } from './takeSnapshot.js'

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

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

/**
 * The core monitor, after Faust's `Monitor`: a {@link Sensor} that keeps counts, latencies, rates and,
 * per topic-partition, read, committed and end offsets and lag. It only counts: reading is
 * {@link snapshot}, which web `/stats` serves and which `DatadogMonitor` and `PrometheusMonitor` export.
 *
 * Subclasses may read the counters (`this.state`, or each by its own name: `this.messagesReceived`),
 * or override a hook and call `super` to see each event as it happens. Every hook is O(1) (a few map
 * lookups); percentiles are computed in {@link snapshot}, never on the hot path.
 *
 * Partitions stay in the snapshot after they are revoked, with their last known offsets, until
 * {@link reset}. What is not counted but read from the running worker (each agent's oldest event
 * in progress and queued events) comes from the probe its `onWorkerStarted` hands over.
 */
export class Monitor extends MonitorCounters implements Sensor {
  protected readonly now: () => number
  protected readonly rateWindowMs: number
  protected readonly maxLatencySamples: number
  protected readonly eventTimingsPerSec: number
  /** Everything counted since construction or the last {@link reset}, which replaces it whole. */
  protected state: MonitorState
  private readonly settings: MonitorSettings
  /** The running worker's probe; kept across {@link reset}, since it counts nothing. */
  private probe: WorkerProbe | undefined

  constructor(options: MonitorOptions = {}) {
    super()
    this.now = options.now ?? (() => performance.now())
    this.rateWindowMs = Math.max(1, Math.ceil((options.rateWindowMs ?? 10_000) / 1000)) * 1000
    this.maxLatencySamples = options.maxLatencySamples ?? 1000
    this.eventTimingsPerSec = options.eventTimingsPerSec ?? 10_000
    if (!(this.eventTimingsPerSec > 0)) {
      throw new RangeError(`eventTimingsPerSec must be above 0 (got ${options.eventTimingsPerSec})`)
    }
    this.settings = {
      now: this.now,
      rateWindowMs: this.rateWindowMs,
      maxLatencySamples: this.maxLatencySamples,
      eventTimingsPerSec: this.eventTimingsPerSec,
    }
    this.state = new MonitorState(this.settings)
  }

  /** Forgets everything counted so far, as if just constructed. The worker's probe is kept. */
  reset(): void {
    this.state = new MonitorState(this.settings)
  }

  /** Milliseconds since a `state` a start hook returned; undefined if the state is not ours. */
  protected elapsed(state: unknown): number | undefined {
    return typeof state === 'number' ? Math.max(0, this.now() - state) : undefined
  }

  onMessageIn(tp: TopicPartition, offset: number, bytes: number): void {
    const s = this.state
    s.messagesReceived++
    s.messagesReceivedBytes += bytes
    s.messagesActive++
    let topic: TopicStats
    let offsets: PartitionOffsets
    if (tp === s.lastTp) {
      topic = s.lastTpTopic!
      offsets = s.lastTpOffsets!
    } else {
      topic = s.topic(tp.topic)
      offsets = s.partition(tp)
      // The runtime passes one object per partition: the next message likely has the same.
      s.lastTp = tp
      s.lastTpTopic = topic
      s.lastTpOffsets = offsets
    }
    topic.received++
    topic.receivedBytes += bytes
    offsets.read = offset
    // Having read `offset`, the partition holds at least offset + 1 records, whatever fetch last said.
    if (offset + 1 > offsets.end) offsets.end = offset + 1
    s.unratedReceived++
  }

  /** Adds the messages received and events handled since the clock was last read to their rates. */
  protected addUnrated(now: number): void {
    const s = this.state
    if (s.unratedReceived > 0) {
      s.receivedRate.add(now, s.unratedReceived)
      s.unratedReceived = 0
    }
    if (s.unratedEvents > 0) {
      s.eventRate.add(now, s.unratedEvents)
      s.unratedEvents = 0
    }
  }

  onMessageOut(_tp: TopicPartition, _offset: number): void {
    if (this.state.messagesActive > 0) this.state.messagesActive--
  }

  /** The start time for a timed event (see {@link MonitorOptions.eventTimingsPerSec}), else undefined. */
  onStreamEventIn(event: StreamEventInfo): unknown {
    const s = this.state
    s.eventsTotal++
    s.eventsActive++
    const stream = s.stream(event.stream)
    stream.total++
    stream.active++
    s.unratedEvents++
    if (!s.eventTiming.due()) return undefined
    const now = this.now()
    this.addUnrated(now)
    s.eventTiming.timed(now)
    return now
  }

  onStreamEventOut(event: StreamEventInfo, state: unknown): void {
    const s = this.state
    if (s.eventsActive > 0) s.eventsActive--
    const stream = s.stream(event.stream)
    if (stream.active > 0) stream.active--
    const ms = this.elapsed(state)
    if (ms === undefined) return
    s.eventRuntime.add(ms)
    stream.runtime.add(ms)
  }

  onTableGet(table: string, _key: unknown): void {
    this.state.table(table).gets++
  }

  onTableSet(table: string, _key: unknown, _value: unknown): void {
    this.state.table(table).sets++
  }

  onTableDelete(table: string, _key: unknown): void {
    this.state.table(table).deletes++
  }

  onLateEvent(table: string): void {
    this.state.table(table).lateEvents++
  }

  onCommitInitiated(): unknown {
    return this.now()
  }

  onCommitCompleted(state: unknown, offsets: readonly (TopicPartition & { offset: number })[]): void {
    this.state.commitsTotal++
    const ms = this.elapsed(state)
    if (ms !== undefined) this.state.commitLatency.add(ms)
    for (const tp of offsets) this.updateOffsets(tp, { committed: tp.offset })
  }

  onSendInitiated(topic: string, bytes: number): unknown {
    const now = this.now()
    const s = this.state
    s.messagesSent++
    s.messagesSentBytes += bytes
    s.sendsInFlight++
    const stats = s.topic(topic)
    stats.sent++
    stats.sentBytes += bytes
    s.sentRate.add(now)
    return now
  }

  onSendCompleted(state: unknown, topic: string): void {
    const s = this.state
    if (s.sendsInFlight > 0) s.sendsInFlight--
    s.sendsCompleted++
    const stats = s.topic(topic)
    stats.sendsCompleted++
    const ms = this.elapsed(state)
    if (ms === undefined) return
    s.sendLatency.add(ms)
    stats.sendLatency.add(ms)
  }

  onSendError(_state: unknown, topic: string, _error: unknown): void {
    const s = this.state
    if (s.sendsInFlight > 0) s.sendsInFlight--
    s.sendErrors++
    s.topic(topic).sendErrors++
  }

  onAssignmentStart(_partitions: readonly TopicPartition[]): unknown {
    return this.now()
  }

  onAssignmentCompleted(state: unknown, _partitions: readonly TopicPartition[]): void {
    this.state.assignmentsCompleted++
    const ms = this.elapsed(state)
    if (ms !== undefined) this.state.assignmentLatency.add(ms)
  }

  onAssignmentError(_state: unknown, _error: unknown): void {
    this.state.assignmentErrors++
  }

  onRebalanceStart(_revoked: readonly TopicPartition[]): unknown {
    this.state.rebalancesTotal++
    this.state.rebalancesActive++
    return this.now()
  }

  onRebalanceEnd(state: unknown): void {
    if (this.state.rebalancesActive > 0) this.state.rebalancesActive--
    const ms = this.elapsed(state)
    if (ms !== undefined) this.state.rebalanceLatency.add(ms)
  }

  onWebRequest(method: string, path: string, status: number, ms: number): void {
    const s = this.state
    s.webRequests++
    increment(s.webByStatus, String(status))
    const key = `${method}\u0000${path}\u0000${status}`
    const row = s.webRequestCounts.get(key)
    if (row === undefined) s.webRequestCounts.set(key, { method, route: path, status, total: 1 })
    else row.total++
    s.webLatency.add(ms)
  }

  onDlq(source: TopicPartition & { offset: number }, dlqTopic: string, _reason: string): void {
    const s = this.state
    s.dlqTotal++
    increment(s.dlqByDlqTopic, dlqTopic)
    increment(s.dlqBySourceTopic, source.topic)
    const key = `${source.topic}\u0000${dlqTopic}`
    const row = s.dlqMessageCounts.get(key)
    if (row === undefined) s.dlqMessageCounts.set(key, { topic: source.topic, dlqTopic, total: 1 })
    else row.total++
  }

  onSkip(stream: string, _error: unknown): void {
    this.state.skipsTotal++
    increment(this.state.skipsByStream, stream)
  }

  onWorkerRestart(reason: unknown): void {
    this.state.restartsTotal++
    this.state.lastRestartReason = reason instanceof Error ? reason.message : String(reason)
  }

  onWorkerStarted(probe: WorkerProbe): void {
    this.probe = probe
  }

  /** The running worker's agents, read now: `[]` before a worker started and once it stopped. */
  protected agentProgress(): AgentProgress[] {
    return this.probe?.agents() ?? []
  }

  onRecoveryProgress(table: string, partition: number, done: number, total: number): void {
    let partitions = this.state.recovery.get(table)
    if (partitions === undefined) this.state.recovery.set(table, (partitions = new Map()))
    partitions.set(partition, { done, total })
  }

  onOffsets(tp: TopicPartition, offsets: { read?: number; committed?: number; end?: number }): void {
    if (this.state.unratedReceived > 0 || this.state.unratedEvents > 0) this.addUnrated(this.now())
    this.updateOffsets(tp, offsets)
  }

  protected updateOffsets(
    tp: TopicPartition,
    update: { read?: number; committed?: number; end?: number },
  ): void {
    const offsets = this.state.partition(tp)
    if (update.read !== undefined) offsets.read = update.read
    if (update.committed !== undefined) offsets.committed = update.committed
    // A reported end is taken as is (it may be older than what we have since read), but never below
    // what reading or committing proves exists, so lag cannot go negative from a stale fetch.
    const end = update.end ?? offsets.end
    offsets.end = Math.max(end, offsets.read + 1, offsets.committed)
  }

  /** Lag of one partition: records at or after the committed offset. Nothing committed counts from 0. */
  protected lag(offsets: PartitionOffsets): number {
    return lag(offsets)
  }

  /** Whether any table partition has not finished replaying its changelog. */
  get recovering(): boolean {
    return this.state.recovering
  }

  /** Everything counted so far, as a fresh plain object (safe to keep, mutate or `JSON.stringify`). */
  snapshot(): MonitorSnapshot {
    const now = this.now()
    this.addUnrated(now)
    return takeSnapshot(this.state, now, this.rateWindowMs, this.agentProgress())
  }
}
