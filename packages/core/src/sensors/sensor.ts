import type { Headers, TopicPartition } from '../transport/transport.js'

/**
 * What a sensor learns about one event as it moves through a stream. The runtime hands the same
 * object to `onStreamEventIn` and `onStreamEventOut`, and `currentStreamEventInfo()` returns it
 * while the agent handles the event, so a sensor can keep per-event state in a `WeakMap` keyed by
 * it (a span, say).
 */
export interface StreamEventInfo {
  /** The agent (stream) name. */
  stream: string
  topic: string
  partition: number
  offset: number
  /**
   * The record's headers as they came in (a channel message's, for a channel): where a trace
   * context travels. Always set by the runtime; optional so a sensor can be driven by hand in
   * tests. Read only.
   */
  readonly headers?: Readonly<Headers>
}

/** One agent's work in progress, as a {@link WorkerProbe} reads it. */
export interface AgentProgress {
  /** The agent name. */
  agent: string
  /** Milliseconds the oldest event in progress has been in an actor's hands (0: none), to a watchdog tick. */
  oldestEventAgeMs: number
  /** Events waiting in the agent's queues. */
  queued: number
}

/**
 * A running worker's figures that change too often to report as hooks (they would cost on every
 * event) but are cheap to read: a sensor keeps the probe and reads it when it reports (a snapshot,
 * a scrape, a flush).
 */
export interface WorkerProbe {
  /** Each agent's work in progress, read now. Empty once the worker has stopped or crashed. */
  agents(): AgentProgress[]
}

/**
 * Hooks the runtime calls as work happens. Every hook is optional; implement the ones you need.
 * Hooks are called synchronously on the hot path: keep them cheap and never throw (a throwing
 * sensor is logged and ignored). `state` values returned from a `...Initiated`/`...Start` hook are
 * passed back to the matching `...Completed`/`...End` hook, to measure latency without globals.
 */
export interface Sensor {
  onMessageIn?(tp: TopicPartition, offset: number, bytes: number): void
  /**
   * A stream handed an event to the agent's code (each event of a `take()` batch). What it returns
   * comes back to `onStreamEventOut`: the two bracket the handling of one event.
   */
  onStreamEventIn?(event: StreamEventInfo): unknown
  /**
   * The agent is done with the event: acked (handled, skipped or dead-lettered), or its attempt
   * failed and it is handed in again for a retry (another `onStreamEventIn` follows).
   */
  onStreamEventOut?(event: StreamEventInfo, state: unknown): void
  onMessageOut?(tp: TopicPartition, offset: number): void
  onTableGet?(table: string, key: unknown): void
  onTableSet?(table: string, key: unknown, value: unknown): void
  onTableDelete?(table: string, key: unknown): void
  onCommitInitiated?(): unknown
  onCommitCompleted?(state: unknown, offsets: readonly (TopicPartition & { offset: number })[]): void
  /**
   * A record is handed to the producer. `bytes` is its value's size. For a record the app sends
   * (`topic.send`, `agent.send`, an agent's sinks, from an agent or from anywhere else), `headers`
   * are that record's own headers, still writable: a sensor may add headers here (a trace
   * context), and should leave the ones there alone. Absent for a record the runtime forwards as
   * it came (`groupBy`, `through`, `echo`: it keeps its event's headers). To know whether the send
   * comes from an agent handling an event, and which, call `currentStreamEventInfo()` here.
   * Adding headers costs nothing when no sensor does.
   */
  onSendInitiated?(topic: string, bytes: number, headers?: Headers): unknown
  onSendCompleted?(state: unknown, topic: string): void
  onSendError?(state: unknown, topic: string, error: unknown): void
  onAssignmentStart?(partitions: readonly TopicPartition[]): unknown
  onAssignmentCompleted?(state: unknown, partitions: readonly TopicPartition[]): void
  onAssignmentError?(state: unknown, error: unknown): void
  onRebalanceStart?(revoked: readonly TopicPartition[]): unknown
  onRebalanceEnd?(state: unknown): void
  /**
   * The web server answered a request. `path` is the matched route pattern (`/tables/:name/:key`;
   * `/*` when none matched), not the raw path, so labels built from it stay few.
   */
  onWebRequest?(method: string, path: string, status: number, ms: number): void
  /** A message went to a dead-letter topic. */
  onDlq?(source: TopicPartition & { offset: number }, dlqTopic: string, reason: string): void
  /** An agent's `onError: 'skip'` dropped an event. */
  onSkip?(stream: string, error: unknown): void
  /** Progress of table recovery: `done` records of `total` replayed for a table partition. */
  onRecoveryProgress?(table: string, partition: number, done: number, total: number): void
  /** A partition's offsets, reported after each commit and on fetch. */
  onOffsets?(tp: TopicPartition, offsets: { read?: number; committed?: number; end?: number }): void
  /** A late event for an already closed window (tables, windows). */
  onLateEvent?(table: string): void
  /**
   * The app replaced its worker in-process after a failure it rolls back from (a failed
   * transaction, a failed flush): the new worker recovers from the last commit.
   */
  onWorkerRestart?(reason: unknown): void
  /**
   * A worker is running: at `app.start()` and again for the new worker of each in-process restart.
   * Keep `probe` to read the worker's live figures when reporting; the latest one is the current
   * worker's.
   */
  onWorkerStarted?(probe: WorkerProbe): void
}
