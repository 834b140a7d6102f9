// The core Monitor's figures as OpenTelemetry metrics: the metric set of @mephisto/monitor-prometheus
// under OTel names (dots, units as metadata, no _total), read from the monitor's counts when the
// SDK collects, plus latency histograms recorded as measurements complete. It traces nothing
// (OpenTelemetryTracing does) and exports nothing itself: the SDK's readers do.
import type { MonitorOptions, StreamEventInfo, TopicPartition } from '@mephisto/core'
import { Monitor } from '@mephisto/core'
import type {
  Attributes,
  BatchObservableCallback,
  Histogram,
  Meter,
  MeterProvider,
  Observable,
} from '@opentelemetry/api'
import { metrics } from '@opentelemetry/api'
import { INSTRUMENTATION_SCOPE } from './openTelemetryTracing.js'

export interface OpenTelemetryMonitorOptions extends MonitorOptions {
  /**
   * Where the metrics are registered. Default: the global meter provider
   * (`metrics.getMeterProvider()`) as it is when the monitor is built, so register the SDK first.
   */
  meterProvider?: MeterProvider
  /** Prepended to every metric name. Default `'mephisto.'`. */
  prefix?: string
  /** Explicit bucket boundaries of the duration histograms, in seconds. Default: 0.5 ms to 10 s. */
  buckets?: number[]
  /**
   * Events per second whose runtime goes into `event.duration` (see the core `Monitor`). Default
   * `Infinity`: every event, so the histogram's count is the event count.
   */
  eventTimingsPerSec?: number
}

/**
 * Default histogram boundaries, in seconds: sub-millisecond event runtimes up to multi-second
 * commits. The same as `@mephisto/monitor-prometheus`'s `DEFAULT_BUCKETS` (copied: plug-ins do
 * not depend on each other).
 */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

type Observe = (value: number, attributes?: Attributes) => void
type Fill = (observe: Observe) => void

// Attribute names: OTel's semantic conventions where one fits, `mephisto.*` for the rest.
const TOPIC = 'messaging.destination.name'
const PARTITION = 'messaging.destination.partition.id'
const AGENT = 'mephisto.agent'
const TABLE = 'mephisto.table'
const TABLE_PARTITION = 'mephisto.table.partition'

/**
 * The core {@link Monitor} exported through an OpenTelemetry meter: the metrics of
 * `@mephisto/monitor-prometheus`, same meaning, OTel names (`mephisto.messages.received` for
 * `mephisto_messages_received_total`). Counters, up-down counters and gauges are observable: the
 * SDK reads them from the monitor's counts when it collects, so the hot path costs what the core
 * monitor costs. Durations are histograms in seconds, recorded as they complete.
 *
 * @example
 * const otel = new OpenTelemetryMonitor({ meterProvider })
 * app.sensors.add(otel)
 * // on shutdown, after app.stop(): otel.close()
 */
export class OpenTelemetryMonitor extends Monitor {
  /** The meter the instruments belong to. */
  readonly meter: Meter
  /** The metric name prefix. */
  readonly prefix: string

  private readonly eventDuration: Histogram
  private readonly commitDuration: Histogram
  private readonly sendDuration: Histogram
  private readonly assignmentDuration: Histogram
  private readonly rebalanceDuration: Histogram
  private readonly httpDuration: Histogram
  private readonly observed: { instrument: Observable; fill: Fill }[] = []
  private readonly collect: BatchObservableCallback
  /** Attributes of the per-event histogram by agent, built once: recorded for every event. */
  private readonly agentAttributes = new Map<string, Attributes>()
  private closed = false

  constructor(options: OpenTelemetryMonitorOptions = {}) {
    super({ ...options, eventTimingsPerSec: options.eventTimingsPerSec ?? Number.POSITIVE_INFINITY })
    this.meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE)
    this.prefix = options.prefix ?? 'mephisto.'
    const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)]

    // Observed from the monitor's counts at each collection (this.state: reset() replaces it).
    this.counter('messages.received', 'Messages received from the broker', '{message}', (observe) => {
      for (const [topic, t] of this.state.topics) if (t.received > 0) observe(t.received, { [TOPIC]: topic })
    })
    this.counter('messages.received.size', 'Bytes (key + value) of messages received', 'By', (observe) => {
      for (const [topic, t] of this.state.topics)
        if (t.received > 0) observe(t.receivedBytes, { [TOPIC]: topic })
    })
    this.counter(
      'messages.sent',
      'Messages handed to the producer, successful or not',
      '{message}',
      (observe) => {
        for (const [topic, t] of this.state.topics) if (t.sent > 0) observe(t.sent, { [TOPIC]: topic })
      },
    )
    this.counter('messages.sent.size', 'Value bytes of messages handed to the producer', 'By', (observe) => {
      for (const [topic, t] of this.state.topics) if (t.sent > 0) observe(t.sentBytes, { [TOPIC]: topic })
    })
    this.counter('send.errors', 'Sends the producer failed', '{error}', (observe) => {
      for (const [topic, t] of this.state.topics)
        if (t.sent > 0 || t.sendErrors > 0) observe(t.sendErrors, { [TOPIC]: topic })
    })
    this.upDown('messages.active', 'Messages received and not yet fully processed', '{message}', (observe) =>
      observe(this.state.messagesActive),
    )
    this.upDown(
      'sends.in_flight',
      'Sends initiated and neither acknowledged nor failed yet',
      '{send}',
      (observe) => observe(this.state.sendsInFlight),
    )
    this.counter('events', 'Events that entered an agent (stream)', '{event}', (observe) => {
      for (const [stream, s] of this.state.streams) observe(s.total, { [AGENT]: stream })
    })
    this.upDown('events.active', 'Events in an agent not yet acknowledged', '{event}', (observe) => {
      for (const [stream, s] of this.state.streams) observe(s.active, { [AGENT]: stream })
    })
    this.counter('events.skipped', "Events an agent's onError dropped ('skip')", '{event}', (observe) => {
      for (const [stream, n] of this.state.skipsByStream) observe(n, { [AGENT]: stream })
    })
    this.counter('table.gets', 'Table reads', '{operation}', (observe) => {
      for (const [table, t] of this.state.tables) observe(t.gets, { [TABLE]: table })
    })
    this.counter('table.sets', 'Table writes', '{operation}', (observe) => {
      for (const [table, t] of this.state.tables) observe(t.sets, { [TABLE]: table })
    })
    this.counter('table.deletes', 'Table deletes', '{operation}', (observe) => {
      for (const [table, t] of this.state.tables) observe(t.deletes, { [TABLE]: table })
    })
    this.counter('table.late_events', 'Events for a window already closed', '{event}', (observe) => {
      for (const [table, t] of this.state.tables) observe(t.lateEvents, { [TABLE]: table })
    })
    this.counter('commits', 'Offset commits completed', '{commit}', (observe) =>
      observe(this.state.commitsTotal),
    )
    this.counter(
      'assignments',
      'Partition assignments completed (tables recovered)',
      '{assignment}',
      (observe) => observe(this.state.assignmentsCompleted),
    )
    this.counter('assignment.errors', 'Partition assignments that failed', '{error}', (observe) =>
      observe(this.state.assignmentErrors),
    )
    this.counter('rebalances', 'Rebalances started (partitions revoked)', '{rebalance}', (observe) =>
      observe(this.state.rebalancesTotal),
    )
    this.gauge('rebalance.in_progress', '1 while a rebalance is in progress', '1', (observe) =>
      observe(this.state.rebalancesActive > 0 ? 1 : 0),
    )
    this.counter(
      'worker.restarts',
      'In-process worker restarts after a failed transaction or flush',
      '{restart}',
      (observe) => observe(this.state.restartsTotal),
    )
    this.counter('http.requests', 'Requests the worker web server answered', '{request}', (observe) => {
      for (const { method, route, status, total } of this.state.webRequestCounts.values()) {
        observe(total, {
          'http.request.method': method,
          'http.route': route,
          'http.response.status_code': status,
        })
      }
    })
    this.counter('dlq.messages', 'Messages sent to a dead-letter topic', '{message}', (observe) => {
      for (const { topic, dlqTopic, total } of this.state.dlqMessageCounts.values())
        observe(total, { [TOPIC]: topic, 'mephisto.dlq.topic': dlqTopic })
    })
    const perPartition = (
      name: string,
      description: string,
      pick: (o: { read: number; committed: number; end: number }) => number,
    ): void => {
      this.gauge(name, description, '{offset}', (observe) => {
        for (const [topic, t] of this.state.topics) {
          for (const [partition, o] of t.partitions) {
            const v = pick(o)
            // -1 means "not known yet": leave the series out rather than report a fake offset.
            if (v >= 0) observe(v, { [TOPIC]: topic, [PARTITION]: String(partition) })
          }
        }
      })
    }
    perPartition('partition.read_offset', 'Last offset received, per partition', (o) => o.read)
    perPartition(
      'partition.committed_offset',
      'Committed offset (next to read), per partition',
      (o) => o.committed,
    )
    perPartition('partition.end_offset', 'End offset (high watermark), per partition', (o) => o.end)
    perPartition('consumer.lag', 'Records not yet committed: end - committed, per partition', (o) =>
      o.end < 0 ? -1 : this.lag(o),
    )
    const recovery = (
      name: string,
      description: string,
      pick: (p: { done: number; total: number }) => number,
    ) =>
      this.gauge(name, description, '{record}', (observe) => {
        for (const [table, parts] of this.state.recovery)
          for (const [partition, p] of parts)
            observe(pick(p), { [TABLE]: table, [TABLE_PARTITION]: String(partition) })
      })
    recovery(
      'table.recovery.replayed',
      'Changelog records replayed so far, per table partition',
      (p) => p.done,
    )
    recovery('table.recovery.total', 'Changelog records to replay, per table partition', (p) => p.total)
    this.gauge('table.recovering', '1 while any table partition is replaying its changelog', '1', (observe) =>
      observe(this.recovering ? 1 : 0),
    )
    // Read from the running worker's probe, not counted: nothing per event.
    this.gauge(
      'agent.oldest_event.age',
      "How long the oldest event in progress has been in an agent's hands (0: none)",
      's',
      (observe) => {
        for (const { agent, oldestEventAgeMs } of this.agentProgress())
          observe(oldestEventAgeMs / 1000, { [AGENT]: agent })
      },
    )
    this.upDown('agent.events.queued', "Events waiting in an agent's queues", '{event}', (observe) => {
      for (const { agent, queued } of this.agentProgress()) observe(queued, { [AGENT]: agent })
    })

    // Histograms: recorded as each measurement completes.
    this.eventDuration = this.histogram(
      'event.duration',
      'Time from an event entering an agent to its ack',
      buckets,
    )
    this.commitDuration = this.histogram(
      'commit.duration',
      'Commit duration: flush, changelogs and offsets',
      buckets,
    )
    this.sendDuration = this.histogram('send.duration', 'Time from send to broker acknowledgement', buckets)
    this.assignmentDuration = this.histogram(
      'assignment.duration',
      'Assignment duration, table recovery included',
      buckets,
    )
    this.rebalanceDuration = this.histogram(
      'rebalance.duration',
      'Rebalance duration: drain, flush, commit, release',
      buckets,
    )
    this.httpDuration = this.histogram('http.request.duration', 'Web server response time', buckets)

    const observed = this.observed
    this.collect = (result) => {
      for (const { instrument, fill } of observed)
        fill((value, attributes) => result.observe(instrument, value, attributes))
    }
    this.meter.addBatchObservableCallback(
      this.collect,
      observed.map((o) => o.instrument),
    )
  }

  /**
   * Stops reporting the observed metrics (counters, gauges): the SDK no longer reads this
   * monitor. Histograms keep what they recorded. Call it after `app.stop()` when the monitor is
   * done with, so a meter provider that lives on does not keep reporting a stopped app.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.meter.removeBatchObservableCallback(
      this.collect,
      this.observed.map((o) => o.instrument),
    )
  }

  override onStreamEventOut(event: StreamEventInfo, state: unknown): void {
    const ms = this.elapsed(state)
    super.onStreamEventOut(event, state)
    if (ms === undefined) return
    let attributes = this.agentAttributes.get(event.stream)
    if (attributes === undefined)
      this.agentAttributes.set(event.stream, (attributes = { [AGENT]: event.stream }))
    this.eventDuration.record(ms / 1000, attributes)
  }

  override onCommitCompleted(
    state: unknown,
    offsets: readonly (TopicPartition & { offset: number })[],
  ): void {
    const ms = this.elapsed(state)
    super.onCommitCompleted(state, offsets)
    if (ms !== undefined) this.commitDuration.record(ms / 1000)
  }

  override onSendCompleted(state: unknown, topic: string): void {
    const ms = this.elapsed(state)
    super.onSendCompleted(state, topic)
    if (ms !== undefined) this.sendDuration.record(ms / 1000, { [TOPIC]: topic })
  }

  override onAssignmentCompleted(state: unknown, partitions: readonly TopicPartition[]): void {
    const ms = this.elapsed(state)
    super.onAssignmentCompleted(state, partitions)
    if (ms !== undefined) this.assignmentDuration.record(ms / 1000)
  }

  override onRebalanceEnd(state: unknown): void {
    const ms = this.elapsed(state)
    super.onRebalanceEnd(state)
    if (ms !== undefined) this.rebalanceDuration.record(ms / 1000)
  }

  override onWebRequest(method: string, path: string, status: number, ms: number): void {
    super.onWebRequest(method, path, status, ms)
    this.httpDuration.record(ms / 1000, { 'http.route': path })
  }

  private counter(name: string, description: string, unit: string, fill: Fill): void {
    // Cumulative: the monitor's counts only grow (until reset(), which reads as a counter reset).
    this.observe(this.meter.createObservableCounter(this.prefix + name, { description, unit }), fill)
  }

  private upDown(name: string, description: string, unit: string, fill: Fill): void {
    this.observe(this.meter.createObservableUpDownCounter(this.prefix + name, { description, unit }), fill)
  }

  private gauge(name: string, description: string, unit: string, fill: Fill): void {
    this.observe(this.meter.createObservableGauge(this.prefix + name, { description, unit }), fill)
  }

  private observe(instrument: Observable, fill: Fill): void {
    this.observed.push({ instrument, fill })
  }

  private histogram(name: string, description: string, buckets: number[]): Histogram {
    return this.meter.createHistogram(this.prefix + name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: buckets },
    })
  }
}
