import type { MonitorOptions, StreamEventInfo, TopicPartition } from '@mephisto/core'
import { Monitor } from '@mephisto/core'
import { StatsD } from 'hot-shots'

/**
 * The part of a DogStatsD client the monitor uses. A hot-shots `StatsD` fits; so does any client
 * with these methods (a mock in tests, a client shared with the rest of your app).
 */
export interface DogStatsdClient {
  increment(stat: string, value: number, tags?: string[]): void
  gauge(stat: string, value: number, tags?: string[]): void
  timing(stat: string, value: number, sampleRate?: number, tags?: string[]): void
  close(callback?: (error?: Error) => void): void
}

export interface DatadogMonitorOptions extends MonitorOptions {
  /** The DogStatsD agent host. Default: `DD_AGENT_HOST`, else `localhost` (hot-shots' defaults). */
  host?: string
  /** The DogStatsD port. Default: `DD_DOGSTATSD_PORT`, else 8125. */
  port?: number
  /** Prepended to every metric name. Default `'mephisto.'`. */
  prefix?: string
  /** Tags on every metric: `{ env: 'prod' }` or `['env:prod']`. */
  tags?: Record<string, string> | readonly string[]
  /**
   * A client to send through instead of creating one (host and port are then ignored; prefix and
   * tags still apply, because this monitor adds them itself). {@link DatadogMonitor.close} leaves a
   * client passed in open.
   */
  client?: DogStatsdClient
  /** How often counts and gauges are sent. Default 10 000 ms, the agent's own flush interval. */
  flushIntervalMs?: number
  /** Fraction of events whose runtime is sent as a timing (DogStatsD scales counts back up). Default 1. */
  eventSampleRate?: number
  /**
   * Events per second timed at all (see the core `Monitor`). Default `Infinity`: every event, and
   * `eventSampleRate` alone decides what is sent, so DogStatsD's scaling stays right. Lower
   * `eventSampleRate` rather than this.
   */
  eventTimingsPerSec?: number
  /** Called when sending fails (agent unreachable, DNS). Default: one `console.warn`, then silence. */
  onError?: (error: Error) => void
}

const UNSAFE_TAG = /[|,#\n\r]/g

function tag(name: string, value: string | number): string {
  return `${name}:${String(value).replace(UNSAFE_TAG, '_')}`
}

/**
 * The core {@link Monitor} sent to Datadog over DogStatsD (UDP, via hot-shots). Counts and gauges
 * are read from the monitor's own counters every `flushIntervalMs` and sent as deltas and current
 * values, so the hot path costs what the core monitor costs whatever the event rate; latencies are
 * sent as timings when they complete, so the agent computes percentiles. Metrics are tagged with
 * `topic`, `partition`, `stream`, `table` and `agent` where they apply.
 *
 * @example
 * const datadog = new DatadogMonitor({ host: 'localhost', port: 8125, tags: { env: 'prod' } })
 * app.sensors.add(datadog)
 * // on shutdown: await app.stop(); await datadog.close()
 */
export class DatadogMonitor extends Monitor {
  /** The client metrics go through. */
  readonly client: DogStatsdClient
  /** The metric name prefix. */
  readonly prefix: string
  private readonly globalTags: string[]
  private readonly ownsClient: boolean
  private readonly eventSampleRate: number
  private readonly timer: NodeJS.Timeout | undefined
  /** Last value sent per count series, to send deltas. */
  private readonly sentCounts = new Map<string, number>()
  private closed = false

  constructor(options: DatadogMonitorOptions = {}) {
    super({ ...options, eventTimingsPerSec: options.eventTimingsPerSec ?? Number.POSITIVE_INFINITY })
    this.prefix = options.prefix ?? 'mephisto.'
    const tags = options.tags ?? []
    this.globalTags = Array.isArray(tags)
      ? tags.map(String)
      : Object.entries(tags as Record<string, string>).map(([k, v]) => tag(k, v))
    this.eventSampleRate = options.eventSampleRate ?? 1
    let warned = false
    const onError =
      options.onError ??
      ((err: Error) => {
        if (warned) return
        warned = true
        console.warn(
          `[mephisto] DatadogMonitor cannot send metrics (further errors are not logged): ${err.message}`,
        )
      })
    if (options.client) {
      this.client = options.client
      this.ownsClient = false
    } else {
      const client = new StatsD({
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
        // Lines are batched into datagrams of up to 8 KiB, sent at least every second.
        maxBufferSize: 8192,
        bufferFlushInterval: 1000,
        errorHandler: onError,
      })
      this.client = client as unknown as DogStatsdClient
      this.ownsClient = true
    }
    const interval = options.flushIntervalMs ?? 10_000
    if (interval > 0) {
      this.timer = setInterval(() => this.flush(), interval)
      // Metrics must never keep a process alive that is otherwise done.
      this.timer.unref()
    }
  }

  /** Sends the counts accumulated since the last flush and the current gauges now. */
  flush(): void {
    if (this.closed) return
    const state = this.state
    const count = (name: string, value: number, tags: string[] = []): void => {
      const key = `${name}|${tags.join(',')}`
      const last = this.sentCounts.get(key) ?? 0
      // Below the last value means the monitor was reset: everything counted since is new.
      const delta = value >= last ? value - last : value
      this.sentCounts.set(key, value)
      if (delta > 0) this.client.increment(this.prefix + name, delta, this.tags(tags))
    }
    const gauge = (name: string, value: number, tags: string[] = []): void => {
      this.client.gauge(this.prefix + name, value, this.tags(tags))
    }

    for (const [topic, t] of state.topics) {
      const tags = [tag('topic', topic)]
      count('messages_received', t.received, tags)
      count('messages_received_bytes', t.receivedBytes, tags)
      count('messages_sent', t.sent, tags)
      count('messages_sent_bytes', t.sentBytes, tags)
      count('send_errors', t.sendErrors, tags)
      for (const [partition, o] of t.partitions) {
        const ptags = [tag('topic', topic), tag('partition', partition)]
        // -1 means "not known yet": send nothing rather than a fake offset.
        if (o.read >= 0) gauge('partition_read_offset', o.read, ptags)
        if (o.committed >= 0) gauge('partition_committed_offset', o.committed, ptags)
        if (o.end >= 0) {
          gauge('partition_end_offset', o.end, ptags)
          gauge('consumer_lag', this.lag(o), ptags)
        }
      }
    }
    gauge('messages_active', state.messagesActive)
    gauge('sends_in_flight', state.sendsInFlight)
    for (const [stream, s] of state.streams) {
      count('events', s.total, [tag('stream', stream)])
      gauge('events_active', s.active, [tag('stream', stream)])
    }
    for (const [stream, n] of state.skipsByStream) count('skipped_events', n, [tag('stream', stream)])
    for (const [table, t] of state.tables) {
      const tags = [tag('table', table)]
      count('table_gets', t.gets, tags)
      count('table_sets', t.sets, tags)
      count('table_deletes', t.deletes, tags)
      count('table_late_events', t.lateEvents, tags)
    }
    count('commits', state.commitsTotal)
    count('assignments', state.assignmentsCompleted)
    count('assignment_errors', state.assignmentErrors)
    count('rebalances', state.rebalancesTotal)
    count('worker_restarts', state.restartsTotal)
    gauge('rebalance_in_progress', state.rebalancesActive > 0 ? 1 : 0)
    for (const { method, route, status, total } of state.webRequestCounts.values()) {
      count('http_requests', total, [tag('method', method), tag('route', route), tag('status', status)])
    }
    for (const { topic, dlqTopic, total } of state.dlqMessageCounts.values()) {
      count('dlq_messages', total, [tag('topic', topic), tag('dlq_topic', dlqTopic)])
    }
    for (const [table, parts] of state.recovery) {
      for (const [partition, p] of parts) {
        const tags = [tag('table', table), tag('partition', partition)]
        gauge('table_recovery_records_replayed', p.done, tags)
        gauge('table_recovery_records_total', p.total, tags)
      }
    }
    gauge('table_recovering', this.recovering ? 1 : 0)
    // Read from the running worker's probe, not counted; in milliseconds, as the timings are.
    for (const { agent, oldestEventAgeMs, queued } of this.agentProgress()) {
      gauge('agent_oldest_event_age', oldestEventAgeMs, [tag('agent', agent)])
      gauge('agent_events_queued', queued, [tag('agent', agent)])
    }
  }

  /**
   * Stops the flush timer, sends what is pending and closes the client if this monitor created it.
   * Call it after `app.stop()` so the final counts are sent.
   */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.timer) clearInterval(this.timer)
    this.flush()
    this.closed = true
    if (this.ownsClient) await new Promise<void>((resolve) => this.client.close(() => resolve()))
  }

  override onStreamEventOut(event: StreamEventInfo, state: unknown): void {
    const ms = this.elapsed(state)
    super.onStreamEventOut(event, state)
    if (ms !== undefined)
      this.timing('event_runtime', ms, [tag('stream', event.stream)], this.eventSampleRate)
  }

  override onCommitCompleted(
    state: unknown,
    offsets: readonly (TopicPartition & { offset: number })[],
  ): void {
    const ms = this.elapsed(state)
    super.onCommitCompleted(state, offsets)
    if (ms !== undefined) this.timing('commit_latency', ms)
  }

  override onSendCompleted(state: unknown, topic: string): void {
    const ms = this.elapsed(state)
    super.onSendCompleted(state, topic)
    if (ms !== undefined) this.timing('send_latency', ms, [tag('topic', topic)])
  }

  override onAssignmentCompleted(state: unknown, partitions: readonly TopicPartition[]): void {
    const ms = this.elapsed(state)
    super.onAssignmentCompleted(state, partitions)
    if (ms !== undefined) this.timing('assignment_latency', ms)
  }

  override onRebalanceEnd(state: unknown): void {
    const ms = this.elapsed(state)
    super.onRebalanceEnd(state)
    if (ms !== undefined) this.timing('rebalance_latency', ms)
  }

  override onWebRequest(method: string, path: string, status: number, ms: number): void {
    super.onWebRequest(method, path, status, ms)
    this.timing('http_request_latency', ms, [tag('route', path)])
  }

  private timing(name: string, ms: number, tags: string[] = [], sampleRate = 1): void {
    if (this.closed) return
    this.client.timing(this.prefix + name, ms, sampleRate, this.tags(tags))
  }

  private tags(tags: string[]): string[] {
    return this.globalTags.length === 0 ? tags : [...tags, ...this.globalTags]
  }
}
