import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MonitorOptions, PageHandler, StreamEventInfo, TopicPartition, WebRoutes } from '@mephisto/core'
import { Monitor } from '@mephisto/core'
import type { LabelValues } from 'prom-client'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export interface PrometheusMonitorOptions extends MonitorOptions {
  /**
   * Where the metrics are registered. Default: a new `Registry` of this monitor's own, so two apps
   * (or two tests) in one process never clash. Pass prom-client's global `register` to serve
   * Mephisto's metrics together with your own.
   */
  registry?: Registry
  /** Prepended to every metric name. Default `'mephisto_'`. */
  prefix?: string
  /**
   * Also register prom-client's default Node.js process metrics (CPU, memory, event-loop lag, GC),
   * with the same prefix. Default `false`.
   */
  collectDefaultMetrics?: boolean
  /** Histogram buckets, in seconds. Default: 0.5 ms to 10 s. */
  buckets?: number[]
  /**
   * Events per second whose runtime goes into `event_runtime_seconds` (see the core `Monitor`).
   * Default `Infinity`: every event, so the histogram's `_count` is the event count. Lower it when
   * the histogram's cost shows at very high event rates; `_count` then counts timed events.
   */
  eventTimingsPerSec?: number
}

/** Default latency buckets, in seconds: sub-millisecond event runtimes up to multi-second commits. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

type Labels = LabelValues<string>

/**
 * The core {@link Monitor} exported to Prometheus. Counters and gauges are read from the monitor's
 * own counts when Prometheus scrapes, so the hot path costs what the core monitor costs; latency
 * histograms are observed as events finish. Added to `app.sensors`, it serves `/metrics` on the
 * worker's web server; {@link metricsHandler} mounts the same text on any `node:http` server.
 *
 * @example
 * const prometheus = new PrometheusMonitor()
 * app.sensors.add(prometheus)   // GET http://127.0.0.1:6066/metrics
 */
export class PrometheusMonitor extends Monitor implements WebRoutes {
  /** The registry holding the metrics. */
  readonly registry: Registry
  /** The metric name prefix. */
  readonly prefix: string

  private readonly eventRuntimeHistogram: Histogram<string>
  private readonly commitLatencyHistogram: Histogram<string>
  private readonly sendLatencyHistogram: Histogram<string>
  private readonly assignmentLatencyHistogram: Histogram<string>
  private readonly rebalanceLatencyHistogram: Histogram<string>
  private readonly httpDuration: Histogram<string>
  /** Everything registered here, to reset on {@link reset} without touching other metrics of a shared registry. */
  private readonly owned: { reset(): void }[] = []

  constructor(options: PrometheusMonitorOptions = {}) {
    super({ ...options, eventTimingsPerSec: options.eventTimingsPerSec ?? Number.POSITIVE_INFINITY })
    this.registry = options.registry ?? new Registry()
    this.prefix = options.prefix ?? 'mephisto_'
    const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)]
    if (options.collectDefaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: this.prefix })

    // Counters and gauges: recomputed from the monitor's counts on each scrape.
    this.counter('messages_received_total', 'Messages received from the broker', ['topic'], (set) => {
      for (const [topic, t] of this.state.topics) if (t.received > 0) set({ topic }, t.received)
    })
    this.counter(
      'messages_received_bytes_total',
      'Bytes (key + value) of messages received',
      ['topic'],
      (set) => {
        for (const [topic, t] of this.state.topics) if (t.received > 0) set({ topic }, t.receivedBytes)
      },
    )
    this.counter(
      'messages_sent_total',
      'Messages handed to the producer, successful or not',
      ['topic'],
      (set) => {
        for (const [topic, t] of this.state.topics) if (t.sent > 0) set({ topic }, t.sent)
      },
    )
    this.counter(
      'messages_sent_bytes_total',
      'Value bytes of messages handed to the producer',
      ['topic'],
      (set) => {
        for (const [topic, t] of this.state.topics) if (t.sent > 0) set({ topic }, t.sentBytes)
      },
    )
    this.counter('send_errors_total', 'Sends the producer failed', ['topic'], (set) => {
      for (const [topic, t] of this.state.topics)
        if (t.sent > 0 || t.sendErrors > 0) set({ topic }, t.sendErrors)
    })
    this.gauge('messages_active', 'Messages received and not yet fully processed', [], (set) => {
      set({}, this.state.messagesActive)
    })
    this.gauge('sends_in_flight', 'Sends initiated and neither acknowledged nor failed yet', [], (set) => {
      set({}, this.state.sendsInFlight)
    })
    this.counter('events_total', 'Events that entered an agent (stream)', ['stream'], (set) => {
      for (const [stream, s] of this.state.streams) set({ stream }, s.total)
    })
    this.gauge('events_active', 'Events in an agent not yet acknowledged', ['stream'], (set) => {
      for (const [stream, s] of this.state.streams) set({ stream }, s.active)
    })
    this.counter('skipped_events_total', "Events an agent's onError dropped ('skip')", ['stream'], (set) => {
      for (const [stream, n] of this.state.skipsByStream) set({ stream }, n)
    })
    this.counter('table_gets_total', 'Table reads', ['table'], (set) => {
      for (const [table, t] of this.state.tables) set({ table }, t.gets)
    })
    this.counter('table_sets_total', 'Table writes', ['table'], (set) => {
      for (const [table, t] of this.state.tables) set({ table }, t.sets)
    })
    this.counter('table_deletes_total', 'Table deletes', ['table'], (set) => {
      for (const [table, t] of this.state.tables) set({ table }, t.deletes)
    })
    this.counter('table_late_events_total', 'Events for a window already closed', ['table'], (set) => {
      for (const [table, t] of this.state.tables) set({ table }, t.lateEvents)
    })
    this.counter('commits_total', 'Offset commits completed', [], (set) => set({}, this.state.commitsTotal))
    this.counter('assignments_total', 'Partition assignments completed (tables recovered)', [], (set) =>
      set({}, this.state.assignmentsCompleted),
    )
    this.counter('assignment_errors_total', 'Partition assignments that failed', [], (set) =>
      set({}, this.state.assignmentErrors),
    )
    this.counter('rebalances_total', 'Rebalances started (partitions revoked)', [], (set) =>
      set({}, this.state.rebalancesTotal),
    )
    this.gauge('rebalance_in_progress', '1 while a rebalance is in progress', [], (set) =>
      set({}, this.state.rebalancesActive > 0 ? 1 : 0),
    )
    this.counter(
      'worker_restarts_total',
      'In-process worker restarts after a failed transaction or flush',
      [],
      (set) => set({}, this.state.restartsTotal),
    )
    this.counter(
      'http_requests_total',
      'Requests the worker web server answered',
      ['method', 'route', 'status'],
      (set) => {
        for (const { method, route, status, total } of this.state.webRequestCounts.values()) {
          set({ method, route, status: String(status) }, total)
        }
      },
    )
    this.counter(
      'dlq_messages_total',
      'Messages sent to a dead-letter topic',
      ['topic', 'dlq_topic'],
      (set) => {
        for (const { topic, dlqTopic, total } of this.state.dlqMessageCounts.values()) {
          set({ topic, dlq_topic: dlqTopic }, total)
        }
      },
    )
    const partitionGauge = (
      name: string,
      help: string,
      pick: (o: { read: number; committed: number; end: number }) => number,
    ): void => {
      this.gauge(name, help, ['topic', 'partition'], (set) => {
        for (const [topic, t] of this.state.topics) {
          for (const [partition, o] of t.partitions) {
            const v = pick(o)
            // -1 means "not known yet": leave the series out rather than report a fake offset.
            if (v >= 0) set({ topic, partition: String(partition) }, v)
          }
        }
      })
    }
    partitionGauge('partition_read_offset', 'Last offset received, per partition', (o) => o.read)
    partitionGauge(
      'partition_committed_offset',
      'Committed offset (next to read), per partition',
      (o) => o.committed,
    )
    partitionGauge('partition_end_offset', 'End offset (high watermark), per partition', (o) => o.end)
    partitionGauge('consumer_lag', 'Records not yet committed: end - committed, per partition', (o) =>
      o.end < 0 ? -1 : this.lag(o),
    )
    this.gauge(
      'table_recovery_records_replayed',
      'Changelog records replayed so far, per table partition',
      ['table', 'partition'],
      (set) => {
        for (const [table, parts] of this.state.recovery) {
          for (const [partition, p] of parts) set({ table, partition: String(partition) }, p.done)
        }
      },
    )
    this.gauge(
      'table_recovery_records_total',
      'Changelog records to replay, per table partition',
      ['table', 'partition'],
      (set) => {
        for (const [table, parts] of this.state.recovery) {
          for (const [partition, p] of parts) set({ table, partition: String(partition) }, p.total)
        }
      },
    )
    this.gauge('table_recovering', '1 while any table partition is replaying its changelog', [], (set) =>
      set({}, this.recovering ? 1 : 0),
    )
    // Read from the running worker's probe, not counted: nothing per event.
    this.gauge(
      'agent_oldest_event_age_seconds',
      "How long the oldest event in progress has been in an agent's hands (0: none)",
      ['agent'],
      (set) => {
        for (const { agent, oldestEventAgeMs } of this.agentProgress())
          set({ agent }, oldestEventAgeMs / 1000)
      },
    )
    this.gauge('agent_events_queued', "Events waiting in an agent's queues", ['agent'], (set) => {
      for (const { agent, queued } of this.agentProgress()) set({ agent }, queued)
    })

    // Histograms: observed as each measurement completes.
    this.eventRuntimeHistogram = this.histogram(
      'event_runtime_seconds',
      'Time from an event entering an agent to its ack',
      ['stream'],
      buckets,
    )
    this.commitLatencyHistogram = this.histogram(
      'commit_latency_seconds',
      'Commit duration: flush, changelogs and offsets',
      [],
      buckets,
    )
    this.sendLatencyHistogram = this.histogram(
      'send_latency_seconds',
      'Time from send to broker acknowledgement',
      ['topic'],
      buckets,
    )
    this.assignmentLatencyHistogram = this.histogram(
      'assignment_latency_seconds',
      'Assignment duration, table recovery included',
      [],
      buckets,
    )
    this.rebalanceLatencyHistogram = this.histogram(
      'rebalance_latency_seconds',
      'Rebalance duration: drain, flush, commit, release',
      [],
      buckets,
    )
    this.httpDuration = this.histogram(
      'http_request_duration_seconds',
      'Web server response time',
      ['route'],
      buckets,
    )
  }

  /** The metrics in the Prometheus text exposition format. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  /** The `content-type` of {@link metrics}. */
  get contentType(): string {
    return this.registry.contentType
  }

  /**
   * A `node:http` request handler serving {@link metrics}, to mount on a server of your own
   * (`http.createServer(monitor.metricsHandler())`, or as an Express/Fastify raw handler).
   */
  metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      this.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.contentType, 'cache-control': 'no-store' })
          res.end(text)
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
          res.end(`metrics failed: ${(err as Error)?.message ?? err}`)
        },
      )
    }
  }

  /** `/metrics` on the worker's web server. */
  webRoutes(): Record<string, PageHandler> {
    return {
      '/metrics': async () => ({
        status: 200,
        headers: { 'content-type': this.contentType },
        body: await this.metrics(),
      }),
    }
  }

  override reset(): void {
    super.reset()
    for (const metric of this.owned) metric.reset()
  }

  override onStreamEventOut(event: StreamEventInfo, state: unknown): void {
    const ms = this.elapsed(state)
    super.onStreamEventOut(event, state)
    if (ms !== undefined) this.eventRuntimeHistogram.observe({ stream: event.stream }, ms / 1000)
  }

  override onCommitCompleted(
    state: unknown,
    offsets: readonly (TopicPartition & { offset: number })[],
  ): void {
    const ms = this.elapsed(state)
    super.onCommitCompleted(state, offsets)
    if (ms !== undefined) this.commitLatencyHistogram.observe(ms / 1000)
  }

  override onSendCompleted(state: unknown, topic: string): void {
    const ms = this.elapsed(state)
    super.onSendCompleted(state, topic)
    if (ms !== undefined) this.sendLatencyHistogram.observe({ topic }, ms / 1000)
  }

  override onAssignmentCompleted(state: unknown, partitions: readonly TopicPartition[]): void {
    const ms = this.elapsed(state)
    super.onAssignmentCompleted(state, partitions)
    if (ms !== undefined) this.assignmentLatencyHistogram.observe(ms / 1000)
  }

  override onRebalanceEnd(state: unknown): void {
    const ms = this.elapsed(state)
    super.onRebalanceEnd(state)
    if (ms !== undefined) this.rebalanceLatencyHistogram.observe(ms / 1000)
  }

  override onWebRequest(method: string, path: string, status: number, ms: number): void {
    super.onWebRequest(method, path, status, ms)
    this.httpDuration.observe({ route: path }, ms / 1000)
  }

  private counter(
    name: string,
    help: string,
    labelNames: string[],
    fill: (set: (labels: Labels, v: number) => void) => void,
  ): void {
    const metric: Counter<string> = new Counter({
      name: this.prefix + name,
      help,
      labelNames,
      registers: [this.registry],
      // A counter cannot be set: reset it and add the current totals. Scrapes see monotonic values
      // because the monitor's counts only grow (until reset(), which Prometheus reads as a restart).
      collect: () => {
        metric.reset()
        fill((labels, v) => metric.inc(labels, v))
      },
    })
    this.owned.push(metric)
  }

  private gauge(
    name: string,
    help: string,
    labelNames: string[],
    fill: (set: (labels: Labels, v: number) => void) => void,
  ): void {
    const metric: Gauge<string> = new Gauge({
      name: this.prefix + name,
      help,
      labelNames,
      registers: [this.registry],
      // Series of partitions or streams that went away must disappear, not freeze: reset first.
      collect: () => {
        metric.reset()
        fill((labels, v) => metric.set(labels, v))
      },
    })
    this.owned.push(metric)
  }

  private histogram(name: string, help: string, labelNames: string[], buckets: number[]): Histogram<string> {
    const metric = new Histogram({
      name: this.prefix + name,
      help,
      labelNames,
      buckets,
      registers: [this.registry],
    })
    this.owned.push(metric)
    return metric
  }
}
