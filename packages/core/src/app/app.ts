import type { AgentFn, AgentOptions } from '../agents/agent.js'
import { Agent } from '../agents/agent.js'
import type { Clock } from '../base/clock.js'
import { realClock } from '../base/clock.js'
import { ConfigurationError, NotReadyError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { consoleLogger } from '../base/logger.js'
import type { CrontabOptions, TaskOptions, TimerOptions } from '../base/schedule.js'
import { parseCron } from '../base/schedule.js'
import type { TopicPartition } from '../base/topicPartition.js'
import type { JoinResult, StreamJoinOptions } from '../joins/joinOptions.js'
import { declareStreamJoin } from '../joins/streamJoin.js'
import { Monitor } from '../sensors/monitor.js'
import { SensorSet } from '../sensors/sensorSet.js'
import { resolveStore } from '../stores/resolveStore.js'
import type { Store } from '../stores/store.js'
import type { JoinHost } from '../streams/stream.js'
import type { TableOptions } from '../tables/table.js'
import { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { Message, TopicOptions } from '../topics/topic.js'
import { Channel, Topic } from '../topics/topic.js'
import { createTransport } from '../transport/createTransport.js'
import type { RecordMetadata, Transport } from '../transport/transport.js'
import type { PageHandler, PageOptions } from '../web/page.js'
import { pageRouteBy, parseRoute, splitPath } from '../web/route.js'
import type { PageRoute } from '../web/webHost.js'
import type { CrontabDef, PartitionHooks, Replaceable, TimerDef, WorkerHost } from '../worker/host.js'
import { Worker } from '../worker/worker.js'
import type { AppOptions, AppSettings } from './options.js'
import { DEFAULTS, resolveAppOptions } from './options.js'
import { RestartPolicy } from './restartPolicy.js'
import type { AppTestingSeam } from './testing.js'
import { testingSeam } from './testing.js'

export type { AppOptions, KafkaOptions, ProcessingGuarantee } from './options.js'

/** What `start` may replace; the testkit uses it. */
export interface StartOptions {
  transport?: Transport
  clock?: Clock
  store?: Store
}

/** First path segments of the built-in web pages, which `app.page` cannot take. */
const RESERVED_PAGE_ROOTS = new Set(['health', 'stats', 'agents', 'topics', 'tables'])

/**
 * A Mephisto application: declare topics, agents, tables and timers on it, then `start()` a
 * worker. The same definitions run on Kafka, on the memory broker and in the testkit.
 */
export class App implements WorkerHost, JoinHost {
  readonly id: string
  /** The options as given. */
  readonly options: Readonly<AppOptions>
  /** The options with every default filled in (app/options.ts). */
  readonly settings: AppSettings
  readonly sensors: SensorSet
  readonly monitor: Monitor
  readonly logger: Logger
  /** @internal */ readonly topics = new Map<string, Topic<any, any>>()
  /** @internal */ readonly channels = new Map<string, Channel<any, any>>()
  /** @internal */ readonly agents: Agent<any, any, any>[] = []
  /** @internal */ readonly tables: Table<any, any>[] = []
  /** @internal */ readonly timers: TimerDef[] = []
  /** @internal */ readonly crontabs: CrontabDef[] = []
  /** @internal */ readonly tasks: (() => unknown)[] = []
  /** @internal `app.task(fn, { onLeader: true })` */ readonly leaderTasks: (() => unknown)[] = []
  /** @internal */ readonly partitionHooks: PartitionHooks = { assigned: [], revoked: [] }
  /** @internal */ readonly pages: PageRoute[] = []
  /** @internal */ worker: Worker | undefined
  private channelSeq = 0

  constructor(options: AppOptions) {
    this.settings = resolveAppOptions(options)
    this.id = options.id
    // Frozen: options are resolved once, here, so a later write would be silently ignored; it throws instead.
    this.options = Object.freeze({ ...options })
    this.logger =
      typeof options.logger === 'object'
        ? options.logger
        : consoleLogger(options.logger ?? DEFAULTS.logLevel, options.id)
    this.sensors = new SensorSet({ onSensorError: (err) => this.logger.warn('sensor failed', { err }) })
    this.monitor = new Monitor(options.monitor)
    this.sensors.add(this.monitor)
  }

  get topicPartitions(): number {
    return this.settings.topicPartitions
  }

  /** Declares a topic. Declaring the same name twice returns the first declaration. */
  topic<K = string, V = unknown>(name: string, options: TopicOptions<K, V> = {}): Topic<K, V> {
    const existing = this.topics.get(name)
    if (existing) return existing as Topic<K, V>
    this.assertNotStarted(`topic ${name}`)
    const t = new Topic<K, V>(name, options, this)
    this.topics.set(name, t)
    return t
  }

  /** An in-process topic: agents read it like a topic, nothing goes to the broker. */
  channel<V = unknown, K = unknown>(name?: string): Channel<V, K> {
    const n = name ?? `channel-${++this.channelSeq}`
    if (this.channels.has(n)) throw new ConfigurationError(`channel ${n} is already declared`)
    const c = new Channel<V, K>(n, this)
    this.channels.set(n, c)
    return c
  }

  /** Declares an agent: `fn` iterates the stream of `source`. */
  agent<V, K, R = unknown>(
    source: Topic<K, V> | Channel<V, K> | readonly Topic<K, V>[],
    fn: AgentFn<V, K, R>,
    options: AgentOptions<V, K, R> = {},
  ): Agent<V, K, R> {
    // Several topics (Faust's app.topic('a', 'b')): one stream of all their events.
    const [first, ...more] = Array.isArray(source) ? source : [source]
    if (Array.isArray(source)) {
      if (source.length === 0 || !source.every((t) => t instanceof Topic))
        throw new ConfigurationError(
          'app.agent([topics], fn): give one or more topics of this app (no channels)',
        )
      if (new Set(source.map((t) => t.name)).size !== source.length)
        throw new ConfigurationError('app.agent([topics], fn): a topic is listed twice')
    }
    if (!(first instanceof Topic) && !(first instanceof Channel)) {
      throw new ConfigurationError('app.agent(source, fn): source must be a topic or a channel of this app')
    }
    const a = new Agent<V, K, R>(first, fn, options, this, more as Topic<K, V>[])
    if (this.agents.some((x) => x.name === a.name)) {
      throw new ConfigurationError(`agent ${a.name} is already declared: give one of them { name }`)
    }
    this.assertNotStarted(`agent ${a.name}`)
    this.agents.push(a)
    return a
  }

  /** Declares a table backed by the changelog topic `<id>-<name>-changelog`. */
  table<K = string, V = unknown>(name: string, options: TableOptions<K, V> = {}): Table<K, V> {
    if (this.tables.some((t) => t.name === name))
      throw new ConfigurationError(`table ${name} is already declared`)
    this.assertNotStarted(`table ${name}`)
    const t = new Table<K, V>(name, options, this)
    this.tables.push(t)
    return t
  }

  /**
   * A windowed stream-stream join: events of `left` and `right` whose keys are equal and whose
   * event times differ by at most `withinMs` make a `{ left, right }` (a left join also answers
   * `{ left, right: null }` for a left event nothing joined). Both topics must be co-partitioned.
   * Returns the internal topic of the results, `<id>-<name>-join`, for an agent to read. See
   * docs/joins.md.
   */
  join<K, L, R>(
    left: Topic<K, L>,
    right: Topic<K, R>,
    options: StreamJoinOptions,
  ): Topic<K, JoinResult<L, R>> {
    return declareStreamJoin(this, left, right, options)
  }

  /**
   * A global table: every worker holds all of it, reads it locally, recovers it before it is
   * ready and follows its changelog every `standbyIntervalMs` (docs/tables.md, "Global tables").
   */
  globalTable<K = string, V = unknown>(name: string, options: TableOptions<K, V> = {}): Table<K, V> {
    if (options.standbyReplicas)
      throw new ConfigurationError(`global table ${name}: every worker holds it all; no standbyReplicas`)
    return this.table(name, { ...options, global: true })
  }

  /** Runs `fn` every `ms` (app clock) while the worker runs; `onLeader` runs it on one worker only. */
  timer(ms: number, fn: () => unknown, options: TimerOptions = {}): void {
    if (!(ms > 0)) throw new ConfigurationError('app.timer(ms, fn): ms must be positive')
    this.timers.push({ ms, fn, options })
  }

  /** Runs `fn` on a cron schedule (5 or 6 fields), in `timezone` (default UTC). */
  crontab(expr: string, fn: () => unknown, options: CrontabOptions = {}): void {
    // Parsed now so a bad expression fails where it is declared, not when the worker starts.
    parseCron(expr, options.timezone)
    this.crontabs.push({ expr, fn, options })
  }

  /**
   * Runs `fn` once, when the worker is ready. With `onLeader`, only on the worker that leads the
   * group (one of all the app's workers): when it is ready, or later when it becomes the leader.
   */
  task(fn: () => unknown, options: TaskOptions = {}): void {
    if (options.onLeader) this.leaderTasks.push(fn)
    else this.tasks.push(fn)
  }

  /**
   * Awaited each time this worker is given partitions: after its tables have recovered them and
   * before any of their events is processed (to warm a cache or open a connection per partition).
   * An error is logged; the partitions are processed all the same.
   */
  onPartitionsAssigned(fn: (partitions: TopicPartition[]) => unknown): void {
    this.partitionHooks.assigned.push(fn)
  }

  /**
   * Awaited each time partitions are taken from this worker: after their events in progress
   * finished and were committed, before another worker processes them (to flush per-partition
   * resources). An error is logged.
   */
  onPartitionsRevoked(fn: (partitions: TopicPartition[]) => unknown): void {
    this.partitionHooks.revoked.push(fn)
  }

  /**
   * Serves `handler` at `path` on the worker's web server. `path` may have `:name` segments
   * (`/counts/:user`), passed in `request.params`. The handler's return value is JSON-encoded, or
   * sent as is when it is a `{ status, headers, body }` response. Paths under the built-in pages
   * (`/`, `/health`, `/stats`, `/agents`, `/topics`, `/tables`) are reserved.
   */
  page(path: string, handler: PageHandler, options: PageOptions = {}): void {
    if (typeof handler !== 'function')
      throw new ConfigurationError(`app.page(${JSON.stringify(path)}, handler): handler must be a function`)
    const route = parseRoute(path)
    const first = splitPath(path)[0]
    if (first === undefined || RESERVED_PAGE_ROOTS.has(first)) {
      throw new ConfigurationError(
        `app.page: ${path} is reserved for the built-in pages; choose another path`,
      )
    }
    if (this.pages.some((p) => p.route.pattern === route.pattern)) {
      throw new ConfigurationError(`app.page: ${path} is already declared`)
    }
    this.pages.push({ route, handler, routeBy: pageRouteBy(route, options) })
  }

  /** `http://host:port` of the worker's web server while it listens (set early in `start()`), else undefined. */
  get webUrl(): string | undefined {
    return this.worker?.web?.url
  }

  /**
   * Experimental: the seam the testkit drives the app through (idle, commit now, crash). It may
   * change in a minor version.
   */
  get experimental_testing(): AppTestingSeam {
    return testingSeam(this)
  }

  /** True once `start()` resolved and until `stop()`. */
  get running(): boolean {
    return this.worker?.state === 'running'
  }

  /**
   * Starts a worker: connects, creates missing topics, joins the group and recovers the tables of
   * its partitions. Resolves when ready.
   */
  async start(overrides: StartOptions = {}): Promise<void> {
    if (this.worker && this.worker.state !== 'stopped' && this.worker.state !== 'crashed') {
      throw new ConfigurationError(`app ${this.id} is already started`)
    }
    this.stopRequested = false
    this.startOverrides = overrides
    const worker = new Worker(this, {
      transport: overrides.transport ?? this.createTransport(),
      clock: overrides.clock ?? realClock,
      store: resolveStore(overrides.store ?? this.settings.store),
      // With a transport override (the testkit, tests) the server is off unless the app asks for it.
      web: this.settings.web ?? (overrides.transport ? false : {}),
    })
    this.worker = worker
    const starting = worker.start().catch(async (err: unknown) => {
      await worker.abort(err).catch(() => {})
      throw err
    })
    this.starting = starting
    try {
      await starting
    } finally {
      if (this.starting === starting) this.starting = undefined
    }
  }

  /**
   * Stops fetching, lets events in progress finish, flushes, commits and leaves the group. Called
   * while `start()` is still running, it waits for that start to settle, then stops what it
   * started.
   */
  async stop(): Promise<void> {
    this.stopRequested = true
    await this.starting?.catch(() => {})
    await this.worker?.stop()
  }

  /** The start in progress, if any: a stop waits for it. */
  private starting: Promise<void> | undefined

  /** @internal Stops at once without committing (the testkit's crash). */
  async abort(reason?: unknown): Promise<void> {
    this.stopRequested = true
    await this.worker?.abort(reason)
  }

  /** @internal True while a worker is being replaced after a failed transaction. */
  restarting = false
  private stopRequested = false
  private startOverrides: StartOptions = {}
  private readonly restartPolicy = new RestartPolicy()

  /**
   * @internal A transaction of `worker` failed (exactly-once), or its producer could not flush.
   * Aborts it (what was not committed is dropped, as in a crash) and starts a new worker after a
   * backoff, which recovers the tables from the committed changelogs; a new worker that fails to
   * start (the broker is still out of reach) is tried again after a longer one. More than 10
   * restarts in 5 minutes is not a transient fault: the app then stays crashed (the CLI exits 1)
   * with the last error.
   */
  async restartAfter(worker: Replaceable, reason: unknown): Promise<void> {
    if (this.worker !== worker || this.restarting) return
    this.restarting = true
    try {
      await worker.abort(reason)
      let failed: Replaceable = worker
      let cause = reason
      for (;;) {
        if (this.stopRequested || this.worker !== failed) return
        const { count, backoffMs, giveUp } = this.restartPolicy.next()
        if (giveUp) {
          this.logger.error(
            `app ${this.id}: ${count} restarts after failed transactions or flushes in 5 minutes; giving up`,
            { err: cause },
          )
          return
        }
        await new Promise((r) => setTimeout(r, backoffMs))
        if (this.stopRequested || this.worker !== failed) return
        this.logger.warn(`app ${this.id}: starting a new worker (restart ${count} in 5 minutes)`)
        this.sensors.onWorkerRestart(cause)
        try {
          await this.start(this.startOverrides)
          return
        } catch (err) {
          this.logger.error(`app ${this.id}: the new worker failed to start; trying again`, { err })
          cause = err
          if (!this.worker) return
          failed = this.worker
        }
      }
    } finally {
      this.restarting = false
    }
  }

  /** @internal */
  sendTo(
    target: Topic<any, any> | Channel<any, any>,
    message: Message<any, any>,
    wait: boolean,
  ): Promise<RecordMetadata | undefined> {
    return this.runningWorker(`send to ${target.name}`).sendTo(target, message, wait)
  }

  /** @internal */
  ask(agent: Agent<any, any, any>, message: Message<any, any>, timeoutMs: number): Promise<unknown> {
    return this.runningWorker(`ask ${agent.name}`).ask(agent, message, timeoutMs)
  }

  /** @internal */
  tableState<K, V>(table: Table<K, V>): TableState<K, V> {
    return this.runningWorker(`use table ${table.name}`).tableState(table)
  }

  /** @internal The partitions of `topic` on the running worker's broker: joins check co-partitioning with it. */
  partitionCount(topic: string): Promise<number | undefined> {
    return this.runningWorker(`read the partitions of ${topic}`).transport.admin.partitionCount(topic)
  }

  /**
   * The transport `broker` names, on the Kafka client `transport` (or `MEPHISTO_TRANSPORT`) names,
   * or the one `transport` makes; with the app's id, logger and kafka options.
   */
  createTransport(): Transport {
    const chosen = this.options.transport ?? process.env.MEPHISTO_TRANSPORT
    if (typeof chosen === 'function') return chosen(this.settings.broker, this.options)
    return createTransport(this.settings.broker, { ...this.options, client: chosen || undefined })
  }

  private runningWorker(what: string): Worker {
    const w = this.worker
    if (!w || (w.state !== 'running' && w.state !== 'starting' && w.state !== 'stopping')) {
      throw new NotReadyError(
        `cannot ${what}: app ${this.id} is not running (${w?.state ?? 'never started'}); await app.start() first`,
      )
    }
    return w
  }

  private assertNotStarted(what: string): void {
    if (this.worker && this.worker.state !== 'stopped' && this.worker.state !== 'crashed') {
      throw new ConfigurationError(`cannot declare ${what}: app ${this.id} is already running`)
    }
  }
}
