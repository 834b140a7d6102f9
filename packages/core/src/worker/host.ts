/**
 * What a worker reads from its app: the declarations (topics, agents, tables, timers, pages), the
 * resolved settings, and the services the app keeps across workers (logger, sensors, restarts).
 * The app implements `WorkerHost`; the worker never imports the app.
 */
import type { Clock } from '../base/clock.js'
import type { Logger } from '../base/logger.js'
import type { CrontabOptions, TimerOptions } from '../base/schedule.js'
import type { TopicPartition } from '../base/topicPartition.js'
import type { Store } from '../stores/store.js'
import type { TopicSender } from '../topics/topic.js'
import type { Transport } from '../transport/transport.js'
import type { WebOptions } from '../web/page.js'
import type { WebApp } from '../web/webHost.js'

/** `app.timer(ms, fn, options)` as declared. */
export interface TimerDef {
  ms: number
  fn: () => unknown
  options: TimerOptions
}

/** `app.crontab(expr, fn, options)` as declared. */
export interface CrontabDef {
  expr: string
  fn: () => unknown
  options: CrontabOptions
}

/** `app.onPartitionsAssigned` / `onPartitionsRevoked` hooks, in declaration order. */
export interface PartitionHooks {
  readonly assigned: ((partitions: TopicPartition[]) => unknown)[]
  readonly revoked: ((partitions: TopicPartition[]) => unknown)[]
}

/** The app's options the worker runs by, every default already filled in (app/options.ts). */
export interface WorkerSettings {
  readonly processingGuarantee: 'at_least_once' | 'exactly_once'
  readonly commitIntervalMs: number
  readonly commitEvery: number
  readonly topicPartitions: number
  readonly topicReplicas: number | undefined
  readonly maxBufferedEvents: number
  readonly drainTimeoutMs: number
  readonly autoOffsetReset: 'earliest' | 'latest'
  readonly standbyIntervalMs: number
}

/** What a worker runs on, chosen by the app for each start. */
export interface WorkerServices {
  readonly transport: Transport
  readonly clock: Clock
  /** The default store of tables that name none. */
  readonly store: Store
  /** The web server's address, or false for none. */
  readonly web: false | WebOptions
}

/** Anything the app can abort and replace (a worker). */
export interface Replaceable {
  abort(reason?: unknown): Promise<void>
}

export interface WorkerHost extends WebApp, TopicSender {
  readonly settings: WorkerSettings
  readonly logger: Logger
  readonly timers: readonly TimerDef[]
  readonly crontabs: readonly CrontabDef[]
  readonly tasks: readonly (() => unknown)[]
  /** Tasks for the leader only: run once per worker, when it is ready and leads. */
  readonly leaderTasks: readonly (() => unknown)[]
  readonly partitionHooks: PartitionHooks
  /**
   * A transaction or a flush of `worker` failed: the app aborts it (what was not committed is
   * dropped, as in a crash) and starts a new worker, which recovers from the last commit.
   */
  restartAfter(worker: Replaceable, reason: unknown): Promise<void>
}
