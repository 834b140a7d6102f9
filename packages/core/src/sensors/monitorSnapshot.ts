// What a Monitor's snapshot holds: the plain, JSON-serialisable shape web `/stats` serves and the
// exporters read. Types only: counting is monitor.ts's, reading the counters into this shape is
// takeSnapshot.ts's.

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

/** Requests the web server answered with one status, for one method and route. */
export interface WebRequestsSnapshot {
  method: string
  /** The matched route pattern (`/tables/:name/:key`; `/*` when none matched), not the raw path. */
  route: string
  status: number
  total: number
}

/** Messages sent from one source topic to one dead-letter topic. */
export interface DlqMessagesSnapshot {
  /** The topic the message was read from. */
  topic: string
  dlqTopic: string
  total: number
}

/** One agent's work in progress in the running worker, read when the snapshot is taken. */
export interface AgentSnapshot {
  /** Milliseconds the oldest event in progress has been in an actor's hands (0: none), to a watchdog tick. */
  oldestEventAgeMs: number
  /** Events waiting in the agent's queues. */
  queued: number
}

/** Everything a `Monitor` knows, as plain JSON-serialisable data (records keyed by name). */
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
  /**
   * Web requests by method, route pattern and status, in the order first seen: `web` broken down
   * (its `byStatus` is these summed over method and route). The `http_requests` metric of the
   * Prometheus and Datadog monitors.
   */
  webRequests: WebRequestsSnapshot[]
  dlq: { total: number; byDlqTopic: Record<string, number>; bySourceTopic: Record<string, number> }
  /**
   * Dead-lettered messages by source topic and dead-letter topic, in the order first seen: `dlq`
   * broken down (its `bySourceTopic` and `byDlqTopic` are these summed one way or the other). The
   * `dlq_messages` metric of the Prometheus and Datadog monitors.
   */
  dlqMessages: DlqMessagesSnapshot[]
  skips: { total: number; byStream: Record<string, number> }
  /** In-process worker restarts after a failed transaction or flush, and the last reason. */
  restarts: { total: number; lastReason: string | null }
  recovery: { recovering: boolean; partitions: RecoverySnapshot[] }
  /**
   * Per agent of the running worker, read from it now rather than counted: how long its oldest
   * event in progress has taken so far, and its queued events. `{}` before a worker has started
   * and after it stopped. Not counters, so `reset()` leaves them.
   */
  agents: Record<string, AgentSnapshot>
  /** Sorted by topic, then partition. */
  partitions: PartitionSnapshot[]
  rates: {
    windowMs: number
    eventsPerSec: number
    messagesReceivedPerSec: number
    messagesSentPerSec: number
  }
}
